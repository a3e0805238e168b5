"""How tests/data/old-gan-runs/ was made (issue 31): tiny GAN runs trained with the code of commit 8f51103, when
GANConfig still had 54 flat fields, kept as config.json + one checkpoint each, and ``references.pt``: per run the
samples of ``dgm.load(run).sample(8, generator=torch.Generator().manual_seed(0))`` (``raw``: with ``ema=False``),
the loaded model's state_dict sha256, and the sha256 after ``dgm train MODEL --out COPY --resume --steps 5``.
tests/test_gan_config_compat.py checks every one of them with today's code. Rerunning this script with today's
code would only record today's behaviour: it is kept to say what the files are, not to be rerun.

    python tests/data/old-gan-runs/make_references.py OUT_DIR
"""
import hashlib
import shutil
import sys
from pathlib import Path

import torch

TINY = ["--hidden", "4", "--layers", "1", "--steps", "3", "--batch-size", "16", "--n-samples", "0", "--no-progress"]
RUNS = {  # name: (model, flags)
    "wgan-gp-ema-ring8": ("gan", ["--data", "ring8", "--objective", "wgan-gp", "--n-critic", "2", "--gp-weight", "5",
                                  "--drift", "0.001", "--ema-decay", "0.9", "--ema-start", "1"]),
    "ebgan-pack2-ring8": ("gan", ["--data", "ring8", "--objective", "ebgan", "--margin", "2", "--pt-weight", "0.2",
                                  "--pack", "2", "--instance-noise", "0.1", "--noise-decay-steps", "10"]),
    "r1-gdpp-mb-ring8": ("gan", ["--data", "ring8", "--r1", "1", "--r1-every", "2", "--gdpp", "0.5", "--update-order",
                                 "simultaneous", "--lr-d", "0.001", "--lr-g", "0.0005", "--mbstd", "--mbstd-group", "2"]),
    "unrolled-dragan-ring8": ("gan", ["--data", "ring8", "--objective", "dragan", "--dragan-c", "0.3",
                                      "--unroll-steps", "2", "--spectral-norm"]),
    "began-ring8": ("gan", ["--data", "ring8", "--objective", "began", "--gamma", "0.7", "--lambda-k", "0.01"]),
    "cond-projection-digits": ("gan", ["--data", "digits", "--hidden", "2", "--latent-dim", "4", "--conditional",
                                       "--cond", "projection", "--objective", "hinge", "--ortho-reg", "0.001"]),
    "acgan-digits": ("gan", ["--data", "digits", "--latent-dim", "2", "--conditional", "--cond", "ac",
                             "--ac-weight", "0.5", "--arch", "mlp", "--hidden", "2", "--minibatch-disc", "2",
                             "--minibatch-disc-dim", "2"]),
    "stylegan-digits": ("gan", ["--data", "digits", "--arch", "stylegan", "--hidden", "1", "--latent-dim", "2",
                                "--mapping-layers", "1", "--r1-every", "2", "--modulation", "demod",
                                "--style-mix-prob", "0.5", "--truncation-cutoff", "2", "--no-d-residual"]),
    "progan-digits": ("gan", ["--data", "digits", "--arch", "progan", "--hidden", "1", "--latent-dim", "2",
                              "--phase-images", "16", "--no-pixelnorm", "--objective", "wgan-gp", "--drift",
                              "0.001", "--n-critic", "1", "--ema-decay", "0.5"]),
    "infogan-digits": ("infogan", ["--data", "digits", "--arch", "mlp", "--hidden", "2", "--latent-dim", "2",
                                   "--cat-codes", "3", "--cont-codes", "1"]),
    "ssgan-digits": ("ssgan", ["--data", "digits", "--arch", "mlp", "--hidden", "2", "--latent-dim", "2",
                               "--labels-per-class", "2", "--feature-matching"]),
}


def state_sha256(model) -> str:
    """sha256 over every state_dict entry: its name, dtype, shape and bytes, in key order."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        v = v.detach().cpu().contiguous()
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.numpy().tobytes() if v.dtype != torch.bfloat16 else v.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def draw(model):
    out = {"samples": model.sample(8, generator=torch.Generator().manual_seed(0)).cpu()}
    if getattr(model, "has_ema", False):
        out["raw"] = model.sample(8, generator=torch.Generator().manual_seed(0), ema=False).cpu()
    return out


def main(out: Path) -> None:
    import dgm
    from dgm.cli import main as cli

    out.mkdir(parents=True, exist_ok=True)
    refs = {}
    for name, (model, flags) in RUNS.items():
        tmp = out / "_work" / name
        assert cli(["train", model, *TINY, *flags, "--out", str(tmp)]) == 0, name
        run = out / name
        (run / "checkpoints").mkdir(parents=True)
        shutil.copy(tmp / "config.json", run / "config.json")
        last = sorted((tmp / "checkpoints").glob("ckpt-*.pt"))[-1]
        shutil.copy(last, run / "checkpoints" / last.name)
        m = dgm.load(run)
        refs[name] = {**draw(m), "sha256": state_sha256(m)}
        again = out / "_work" / f"{name}-resumed"
        shutil.copytree(run, again)
        assert cli(["train", model, "--out", str(again), "--resume", "--steps", "5", "--no-progress"]) == 0, name
        r = dgm.load(again)
        refs[name]["resumed_sha256"] = state_sha256(r)
        refs[name]["resumed"] = draw(r)["samples"]
    shutil.rmtree(out / "_work")
    torch.save(refs, out / "references.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
