import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def torchrun(args, out, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """`dgm ARGS --out OUT` on NPROC CPU processes through PyTorch's launcher (torchrun --standalone), one thread
    each, from this checkout's src/; asserts that it succeeded on all of them and returns the finished process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                        "-m", "dgm.cli", *args, "--out", str(out)], env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"{nproc} process(es)" in p.stdout
    return p
sys.path.insert(0, str(ROOT / "src"))

TINY = ["--hidden", "8", "--layers", "2", "--first-kernel", "3"]


@pytest.fixture(scope="session", autouse=True)
def _private_feature_cache(tmp_path_factory):
    """Tests write only into temporary folders: the feature cache too (never ~/.cache/dgm). The registry of running
    dgm processes (dgm.threads) is private to the session as well, so that the default thread count of a test's run
    (and with it the last bits of its results) does not depend on other dgm processes on the machine."""
    saved = {k: os.environ.get(k) for k in ("DGM_CACHE_DIR", "DGM_RUNTIME_DIR")}
    os.environ["DGM_CACHE_DIR"] = str(tmp_path_factory.mktemp("dgm-cache"))
    os.environ["DGM_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("dgm-runtime"))
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny networks (pytestmark = pytest.mark.usefixtures("one_thread")): on a
    busy 2-core machine, a process's threads spin against each other and made such tests 10-50x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A few steps of a tiny Gated PixelCNN on binarized digits (shared, read-only)."""
    from dgm.cli import main

    out = tmp_path_factory.mktemp("runs") / "tiny"
    code = main(["train", "gated-pixelcnn", "--data", "digits", "--binarize", "--steps", "4", "--batch-size", "32",
                 "--out", str(out), "--n-samples", "4", "--no-progress", *TINY])
    assert code == 0
    return out


# Tiny runs of every kind of figure and evaluation, trained once per test session (a CPU run with a seed is
# bit-for-bit repeatable): tests/test_cli_references.py and tests/test_figures.py; tests copy one before writing into it
COMMON = ["--no-progress", "--n-samples", "0", "--seed", "0", "--eval-every", "100000", "--ckpt-every", "100000"]
PCNN = ["--hidden", "8", "--layers", "2", "--first-kernel", "3", "--batch-size", "32", "--steps", "3"]
GAN = ["--hidden", "8", "--latent-dim", "4", "--layers", "1", "--batch-size", "16", "--steps", "3"]
RUNS = {
    "gpcnn": ["gated-pixelcnn", "--data", "digits", "--binarize", *PCNN],
    "gpcnn-cond": ["gated-pixelcnn", "--data", "digits", "--binarize", "--conditional", *PCNN],
    "made": ["made", "--data", "digits", "--binarize", "--hidden", "16", "--orders", "2", "--steps", "3",
             "--batch-size", "32"],
    "vae": ["vae", "--data", "digits", "--binarize", "--hidden", "16", "--latent-dim", "2", "--steps", "3",
            "--batch-size", "32"],
    "vqvae": ["vq-vae", "--data", "digits", "--binarize", "--codebook-size", "8", "--code-dim", "4", "--hidden", "8",
              "--steps", "2", "--batch-size", "64"],
    "gan": ["gan", "--data", "digits", "--ema-decay", "0.5", *GAN],
    "gan-cond": ["gan", "--data", "digits", "--conditional", *GAN],
    "ring": ["gan", "--data", "ring8", *GAN],
    "stylegan": ["gan", "--arch", "stylegan", "--data", "digits", "--batch-size", "8", "--hidden", "4", "--latent-dim",
                 "8", "--mapping-layers", "2", "--steps", "2"],
    "sagan": ["gan", "--arch", "sagan", "--data", "digits", "--hidden", "8", "--latent-dim", "8", "--batch-size", "8",
              "--steps", "2"],
    "infogan": ["infogan", "--data", "digits", "--cat-codes", "3", "--cont-codes", "1", "--hidden", "8",
                "--latent-dim", "4", "--layers", "1", "--batch-size", "16", "--steps", "2"],
    "cyclegan": ["cyclegan", "--data", "digits-labels", "--base-channels", "4", "--res-blocks", "1", "--d-channels",
                 "4", "--batch-size", "16", "--steps", "2"],
    "adapt": ["adapt", "--data", "digits:digits-textured", "--hidden", "8", "--filters", "4", "--batch-size", "16",
              "--steps", "2"],
    "fair": ["fair", "--data", "fair-toy", "--hidden", "8", "--batch-size", "32", "--steps", "3"],
    "clip": ["clip", "--data", "captions-digits", "--embed-dim", "8", "--hidden", "4", "--text-dim", "8", "--text-heads",
             "2", "--batch-size", "16", "--steps", "2"],
    "wavenet": ["wavenet", "--data", "tones", "--layers", "3", "--stacks", "1", "--residual", "8", "--skip", "8",
                "--batch-size", "8", "--steps", "2"],
}


@pytest.fixture(scope="session")
def reference_runs(tmp_path_factory):
    """name -> run folder of each of RUNS (shared, read-only), trained on one thread (the weights of a CPU run depend
    on the thread count in the last bits, and tests/data/cli-references.json was recorded on one)."""
    import torch

    from dgm.cli import main

    root = tmp_path_factory.mktemp("reference-runs")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, argv in RUNS.items():
            assert main(["train", *argv, *COMMON, "--out", str(root / name)]) == 0, name
    finally:
        torch.set_num_threads(before)
    return {name: root / name for name in RUNS}
