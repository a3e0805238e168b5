"""dgm.runs: self-describing checkpoint files (load / sample / eval with the run directory gone), provenance in
every `dgm eval` result, what models declare (summary line, capabilities, --from), and `dgm bench` from bench/."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import dgm
from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.errors import DgmError
from dgm.models import MODELS
from dgm.models.base import CAPABILITIES
from dgm.runs import IDENTITY

PROVENANCE = {"dgm_version", "torch_version", "checkpoint", "checkpoint_sha256", "step", "split", "seed", "n_fake",
              "n_real"}


def _orphan(tmp_path, run):
    """A copy of the run's newest checkpoint file, with the run directory it came from deleted."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    file = tmp_path / "kept" / "model.pt"
    file.parent.mkdir()
    shutil.copy(ckpt.latest_checkpoint(copy), file)
    shutil.rmtree(copy)
    return file


def _eval(capsys, *args):
    assert main(["eval", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


def test_checkpoints_describe_themselves(tiny_run):
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tiny_run))
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert set(IDENTITY) <= set(state)
    assert state["model_name"] == cfg["model"] == "gated-pixelcnn" and state["dgm_version"] == dgm.__version__
    assert state["model_config"] == cfg["model_config"] and state["data"] == cfg["data"]


def test_a_checkpoint_file_loads_samples_and_evaluates_without_its_run(tmp_path, tiny_run, capsys):
    file = _orphan(tmp_path, tiny_run)
    model, ref = dgm.load(file), dgm.load(tiny_run)
    x = torch.randint(0, 2, (3, 1, 8, 8))
    assert torch.equal(model.log_prob(x), ref.log_prob(x)) and model.trained_steps == ref.trained_steps
    assert model.run_config["model"] == "gated-pixelcnn" and model.checkpoint_file == file

    assert main(["sample", str(file), "-n", "4", "--seed", "3", "--save-tensor", str(tmp_path / "s.pt")]) == 0
    assert capsys.readouterr().out.strip() == str(file.with_name("model-sample-seed3.png"))
    assert main(["sample", str(tiny_run), "-n", "4", "--seed", "3", "--out", str(tmp_path / "r.png"),
                 "--save-tensor", str(tmp_path / "r.pt")]) == 0
    capsys.readouterr()
    assert torch.equal(torch.load(tmp_path / "s.pt"), torch.load(tmp_path / "r.pt"))

    got, want = _eval(capsys, file, "--metric", "nll"), _eval(capsys, tiny_run, "--metric", "nll")
    assert got["nll_nats"] == want["nll_nats"] and got["step"] == want["step"]
    p = got["provenance"]
    assert p["checkpoint"] == str(file) and p["checkpoint_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert p["checkpoint_sha256"] == want["provenance"]["checkpoint_sha256"]  # the same bytes as the run's file


def test_an_old_checkpoint_file_falls_back_to_its_run_config(tmp_path, tiny_run):
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    path = ckpt.latest_checkpoint(run)
    state = ckpt.load_checkpoint(path)
    ckpt.save_atomic({k: v for k, v in state.items() if k not in IDENTITY}, path)
    assert dgm.load(path).run_config["model"] == "gated-pixelcnn"  # from run/config.json
    alone = tmp_path / "alone.pt"
    shutil.copy(path, alone)
    with pytest.raises(DgmError, match="before checkpoints described themselves"):
        dgm.load(alone)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickled_checkpoint_file_is_refused(tmp_path, capsys):
    file = tmp_path / "evil.pt"
    with open(file, "wb") as f:
        pickle.dump({"model": {}, "model_name": "gated-pixelcnn", "payload": shutil.rmtree}, f)
    with pytest.raises(DgmError, match="refused"):
        dgm.load(file)
    assert main(["sample", str(file)]) == 2 and "refused" in capsys.readouterr().err


def test_load_errors_are_one_line(tmp_path, tiny_run, capsys):
    file = _orphan(tmp_path, tiny_run)
    assert main(["sample", str(file), "--checkpoint", "best"]) == 2
    assert "names its own weights" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "not a dgm run directory nor a checkpoint file" in capsys.readouterr().err


def test_provenance_of_images_without_a_run(tmp_path, capsys):
    fakes = tmp_path / "fakes.npz"
    np.savez(fakes, images=np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8))
    r = _eval(capsys, "--real", "digits", "--fake", fakes, "--metric", "fid", "--seed", "7", "--split", "val")
    p = r["provenance"]
    assert PROVENANCE | {"features", "features_sha256"} == set(p)
    assert p["checkpoint"] is None and p["checkpoint_sha256"] is None and p["step"] is None
    assert (p["split"], p["seed"], p["n_fake"], p["n_real"]) == ("val", 7, 40, r["n_real"])
    assert p["features"] == "digits" and p["features_sha256"] in r["feature_network"]
    assert p["dgm_version"] == dgm.__version__ and p["torch_version"] == torch.__version__


def test_every_eval_of_a_run_has_provenance(tiny_run, capsys):
    r = _eval(capsys, tiny_run, "--metric", "nll", "--seed", "2")
    assert set(r["provenance"]) == PROVENANCE  # no feature network: no features keys
    assert r["provenance"]["n_real"] == r["n"] and r["provenance"]["n_fake"] is None
    assert r["provenance"]["step"] == r["step"] and r["provenance"]["seed"] == 2
    assert r["provenance"]["checkpoint"] == str(ckpt.latest_checkpoint(tiny_run))


def _bare(name):
    cls = MODELS.get(name)
    return cls.__new__(cls)  # the summary needs only the class's declarations


def test_each_model_states_its_summary_line():
    """The texts `dgm train` printed before models declared them."""
    assert _bare("pixelcnn").summarize({"nll_nats": 46.95123, "bits_per_dim": 1.05844}) == \
        "val NLL 46.951 nats/example = 1.0584 bits/dim"
    assert _bare("vae").summarize({"neg_elbo_nats": 38.0191, "bits_per_dim": 0.857, "kl_nats": 0.181,
                                   "nll_nats": 1.0}) == "val -ELBO 38.019 nats/example = 0.8570 bits/dim (KL 0.18)"
    assert _bare("avb").summarize({"neg_elbo_nats": 1.0, "bits_per_dim": 2.0, "kl_nats": 3.0}).startswith("val -ELBO")
    assert _bare("vq-vae").summarize({"rec_nats": 45.2721, "mse": 0.25714, "perplexity": 2.41, "n": 3}) == \
        "val reconstruction NLL 45.272 nats/example, MSE 0.2571, code perplexity 2.4"
    gan = _bare("gan")
    assert gan.summarize({"modes": 7, "high_quality": 0.5, "reverse_kl": 0.1234}) == \
        "7 modes, 50.0% high-quality samples, reverse KL 0.123"
    assert gan.summarize({"modes": 0, "high_quality": 0.0}) == \
        "0 modes, 0.0% high-quality samples, reverse KL undefined (no high-quality sample)"
    assert gan.summarize({}) == "" and _bare("pixelcnn").summarize({}) == ""


_PROMISES = {"log_prob": ("log_prob",), "elbo": ("elbo_terms", "log_prob"), "complete": ("complete",),
             "latent": ("reconstruct", "sample"), "codes": ("codes", "terms", "reconstruct"),
             "translate": ("translate", "triplets"), "classify": ("classify",), "info_codes": ("sample", "q"),
             "attention": ("attention_maps",), "styles": ("sampling_generator",), "adapt": ("encode", "classify"),
             "fair": ("encode", "classify"), "text_image": ("embed_images", "embed_texts", "score")}


@pytest.mark.parametrize("name", MODELS.names())
def test_declared_capabilities_are_kept(name):
    cls = MODELS.get(name)
    assert set(cls.capabilities) <= set(CAPABILITIES) == set(_PROMISES)
    for cap in cls.capabilities:
        assert all(callable(getattr(cls, m, None)) for m in _PROMISES[cap]), (name, cap)
    if "elbo" in cls.capabilities:
        assert "{k}" in cls.nll_estimator
    if cls.source_run is not None:
        assert cls.source_run in MODELS and cls.init_from_sources is not MODELS.get("pixelcnn").init_from_sources


def test_undeclared_capabilities_are_refused(tiny_run, tmp_path, capsys):
    assert main(["sample", str(tiny_run), "--plots", "--out", str(tmp_path / "x.png")]) == 2
    assert "--plots needs a latent-variable model" in capsys.readouterr().err


def test_bench_modes_runs_from_the_bench_layer(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "modes", "--objectives", "non-saturating", "--data", "ring8", "--seeds", "1", "--steps", "2",
                 "--batch-size", "64", "--hidden", "16", "--layers", "1", "--no-figures", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 1 and rows[0]["entry"] == "non-saturating" and rows[0]["n_samples"] == 2500
    assert "non-saturating" in capsys.readouterr().out


def test_bench_modes_reuses_only_rows_trained_with_the_same_options(tmp_path, capsys):
    """An interrupted bench resumes from rows.jsonl, but only with rows whose recorded options equal the ones this
    bench would train with: a row of another width is refused in one line, not mixed into the table."""
    out = tmp_path / "bench"
    args = ["bench", "modes", "--objectives", "minimax", "--data", "ring8", "--seeds", "1", "--steps", "2",
            "--batch-size", "64", "--layers", "1", "--no-figures", "--out", str(out)]
    assert main(args + ["--hidden", "16"]) == 0
    first = json.loads((out / "results.json").read_text())["rows"][0]
    assert first["options"]["model"]["hidden"] == 16
    (out / "results.json").unlink()
    assert main(args + ["--hidden", "16"]) == 0  # reused, not retrained: the same row
    assert json.loads((out / "results.json").read_text())["rows"] == [first]
    (out / "results.json").unlink()
    capsys.readouterr()
    assert main(args + ["--hidden", "8"]) == 2
    err = capsys.readouterr().err
    assert "model.hidden: 16 there, 8 here" in err and "Traceback" not in err
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    rows[0].pop("options")  # a row from before options were recorded cannot be checked
    (out / "rows.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert main(args + ["--hidden", "16"]) == 2
    assert "did not record its options" in capsys.readouterr().err


def test_bench_modes_g_steps_entry_counts_generator_steps(tmp_path, capsys):
    """``wgan-gp+g-steps`` under --protocol veegan trains --steps generator steps, i.e. --steps x n_critic (5)
    D updates, beside rows of --steps D updates; the table says so; a rerun reuses the row, another length does not."""
    from dgm.bench.modes import default_entries, resolve
    from dgm.checkpoint import latest_checkpoint

    assert resolve("wgan-gp+g-steps") == ("wgan-gp", {}) and "wgan-gp+g-steps" in default_entries("veegan")
    out = tmp_path / "bench"
    args = ["bench", "modes", "--protocol", "veegan", "--objectives", "wgan-gp+g-steps,wgan-gp", "--data", "ring8",
            "--seeds", "1", "--batch-size", "32", "--hidden", "8", "--no-figures", "--out", str(out)]
    assert main(args + ["--steps", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3 D updates per run" in printed
    assert "wgan-gp+g-steps: 3 generator steps per run = 15 D updates (n_critic 5)" in printed
    rows = {r["entry"]: r for r in map(json.loads, (out / "rows.jsonl").read_text().splitlines())}
    assert (rows["wgan-gp+g-steps"]["steps"], rows["wgan-gp+g-steps"]["length"]) == (15, 3)
    assert (rows["wgan-gp"]["steps"], rows["wgan-gp"]["length"]) == (3, 3)
    assert rows["wgan-gp+g-steps"]["options"] == rows["wgan-gp"]["options"]  # only the length differs
    assert rows["wgan-gp+g-steps"]["options"]["model"]["n_critic"] == 5
    run = Path(rows["wgan-gp+g-steps"]["run_dir"])
    assert torch.load(latest_checkpoint(run), map_location="cpu", weights_only=False)["step"] == 15
    (out / "results.json").unlink()
    assert main(args + ["--steps", "3"]) == 0  # reused: rows.jsonl gains nothing
    assert len((out / "rows.jsonl").read_text().splitlines()) == 2
    (out / "results.json").unlink()
    assert main(args + ["--steps", "2"]) == 0  # another length: both entries train again
    new = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()[2:]]
    assert sorted((r["entry"], r["steps"]) for r in new) == [("wgan-gp", 2), ("wgan-gp+g-steps", 10)]


def test_modes_table_counts_a_retrained_row_once_and_draws_without_lost_run_folders(tmp_path, capsys):
    """A bench trains a seed-0 row again to record its snapshots, so rows.jsonl holds it twice: benchmarks/
    modes_table.py counts the last one only. Rows whose run folders are gone (rows.jsonl copied from another
    machine) are left out of the sample figure instead of stopping it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("modes_table", Path(__file__).parents[1] / "benchmarks" / "modes_table.py")
    modes_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(modes_table)
    out = tmp_path / "bench"
    args = ["bench", "modes", "--objectives", "non-saturating,minimax", "--data", "ring8", "--seeds", "1", "--steps",
            "4", "--batch-size", "64", "--hidden", "16", "--layers", "1", "--out", str(out)]
    assert main(args + ["--no-figures"]) == 0
    (out / "results.json").unlink()
    assert main(args) == 0  # non-saturating seed 0 trains again, now with snapshots
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["entry"] for r in rows].count("non-saturating") == 2
    shutil.rmtree(out / "runs" / "ring8" / "minimax")
    capsys.readouterr()
    assert modes_table.main([str(out), "--copy-to", str(tmp_path / "copy")]) == 0
    table = capsys.readouterr().out
    line = next(x for x in table.splitlines() if x.startswith("non-saturating"))
    assert line.split()[-1] == "1"  # one seed, not two
    assert "(2 runs," in table
    copied = [json.loads(x) for x in (tmp_path / "copy" / "rows.jsonl").read_text().splitlines()]
    assert sorted(r["entry"] for r in copied) == ["minimax", "non-saturating"] and "snapshots" not in copied[0]
    assert (tmp_path / "copy" / "samples-ring8.png").is_file() and (tmp_path / "copy" / "snapshots-ring8.png").is_file()


@pytest.mark.slow  # 8 s: two worker processes
def test_bench_modes_in_parallel_gives_the_rows_of_one_process(tmp_path):
    """--jobs 2 runs each (entry, data, seed) in its own process and logs it when it ends (not in job order):
    the same rows as --jobs 1, each once."""
    args = ["bench", "modes", "--objectives", "non-saturating,minimax", "--data", "ring8", "--seeds", "2", "--steps",
            "4", "--batch-size", "64", "--hidden", "16", "--layers", "1", "--no-figures"]
    keys = ("modes", "high_quality", "reverse_kl", "options")
    got = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        assert main(args + ["--jobs", str(jobs), "--out", str(out)]) == 0
        logged = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
        got[jobs] = {(r["entry"], r["seed"]): tuple(json.dumps(r[k]) for k in keys) for r in logged}
        assert len(logged) == len(got[jobs]) == 4
    assert got[1] == got[2]


@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_bench_modes_records_a_diverged_run_instead_of_stopping(tmp_path, jobs):
    """A GAN whose loss becomes non-finite is a result: its row says it stopped and the bench goes on (also from a
    worker process, which must send the engine's TrainingStopped back), and the table lists it."""
    from dgm.bench.modes import run_benchmark

    res = run_benchmark(["minimax", "non-saturating"], ["ring8"], 1, 30, str(tmp_path / "b"), batch_size=32,
                        jobs=jobs, model_opts={"hidden": 8, "layers": 1, "lr_g": 1e30, "lr_d": 1e30},
                        figure=False, progress=False)
    assert len(res["rows"]) == 2
    assert all("loss became" in r["stopped"] for r in res["rows"])
    assert "stopped early" in res["table"] and "minimax on ring8, seed 0: loss became" in res["table"]
    json.loads((tmp_path / "b" / "results.json").read_text(), parse_constant=lambda c: pytest.fail(f"JSON has {c}"))


@pytest.mark.slow  # multi-second; moved out of the default run to keep it under 10 minutes
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker processes from /proc (Linux)")
def test_bench_modes_workers_end_when_the_bench_is_killed(tmp_path):
    """A bench killed from outside (SIGKILL: no clean-up at all) takes its worker processes with it: they would
    otherwise go on training their runs into the run folders that the next bench of that --out trains afresh."""
    import os
    import signal
    import subprocess
    import sys
    import time

    def workers(parent):
        found = []
        for d in Path("/proc").iterdir():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = (d / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent and b"spawn_main" in cmd:
                found.append(int(d.name))
        return found

    def alive(pid):
        try:
            return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    out = tmp_path / "b"
    cmd = [sys.executable, "-m", "dgm", "bench", "modes", "--objectives", "non-saturating,minimax", "--data", "ring8",
           "--seeds", "1", "--steps", "1000000", "--batch-size", "16", "--hidden", "8", "--layers", "1", "--jobs", "2",
           "--no-figures", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(dgm.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    bench = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    pids = []

    def started():  # both workers up and both runs training
        return len(pids) == 2 and len(list(out.glob("runs/ring8/*/seed-0/config.json"))) == 2

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not started():
            assert bench.poll() is None, "the bench ended before its runs started"
            pids = workers(bench.pid)
            time.sleep(0.2)
        assert started(), "runs never started"
        assert all(alive(p) for p in pids)
        bench.send_signal(signal.SIGKILL)
        bench.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.2)
        assert not any(alive(p) for p in pids), "worker processes outlived the killed bench"
    finally:
        for p in pids + [bench.pid]:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def test_a_torn_or_foreign_rows_jsonl_is_one_line_or_a_warning(tmp_path, capsys):
    """Issue 32: a rows.jsonl torn by a killed bench, or holding lines it never wrote, was a traceback. A torn last
    line is dropped with a warning (and the file rewritten without it); any other bad line is one line naming it."""
    out = tmp_path / "b"
    argv = ["bench", "modes", "--objectives", "non-saturating", "--data", "ring8", "--seeds", "1", "--steps", "2",
            "--no-figures", "--out", str(out)]
    assert main(argv) == 0
    row = (out / "rows.jsonl").read_text().splitlines()[0]
    (out / "results.json").unlink()  # as if the bench had been killed before its end
    (out / "rows.jsonl").write_text(row + '\n{"entry": "non-sat')
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().err.count("its last line was torn") == 1
    assert [json.loads(ln) for ln in (out / "rows.jsonl").read_text().splitlines()] == [json.loads(row)]
    for bad in ("[1]\n", "null\n", '{"entry": 5}\n', "not json\n" + row + "\n"):
        (out / "results.json").unlink(missing_ok=True)
        (out / "rows.jsonl").write_text(bad)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "rows.jsonl line 1" in err and err.count("\n") == 1 and "Traceback" not in err, err
        assert (out / "rows.jsonl").read_text() == bad


def test_a_bench_never_deletes_a_finished_run_nor_one_another_process_holds(tmp_path, capsys):
    """Issue 32: a rerun of a killed bench removed the run folders it trains again, finished runs and runs another
    bench held included. A finished run (one with a checkpoint) now moves to RUN.replaced-N; a run whose lock another
    live process holds is refused in one line and left as it is."""
    import socket

    out = tmp_path / "b"
    argv = ["bench", "modes", "--objectives", "non-saturating", "--data", "ring8", "--seeds", "1", "--steps", "2",
            "--no-figures", "--out", str(out)]
    assert main(argv) == 0
    run = out / "runs" / "ring8" / "non-saturating" / "seed-0"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    for name in ("results.json", "rows.jsonl"):  # as if killed after the run ended but before its row was written
        (out / name).unlink()
    capsys.readouterr()
    assert main(argv) == 0
    kept = run.with_name("seed-0.replaced-1")
    assert sorted(p.name for p in (kept / "checkpoints").iterdir()) == ckpts and (kept / "config.json").is_file()
    assert "is now" in capsys.readouterr().err and list((run / "checkpoints").iterdir())
    for name in ("results.json", "rows.jsonl"):
        (out / name).unlink()
    lock = {"pid": os.getpid(), "host": socket.gethostname(), "token": "t", "started": "now"}  # a live holder
    (run / ".dgm.lock").write_text(json.dumps(lock))
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is being written by another dgm process" in err and err.strip().count("\n") <= 1
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before
    assert not run.with_name("seed-0.replaced-2").exists()


def test_a_checkpoint_of_another_run_is_refused_by_sample_eval_and_resume(tmp_path, capsys):
    """Issue 32: a same-shaped checkpoint of another run or config sitting in a run's checkpoints/ was used without a
    word. Each run has a random id (config.json ``run_id``) that its checkpoints carry, and the model config is
    compared as the model reads it (checkpoints written before run ids are checked by their config alone)."""
    common = ["--data", "digits", "--binarize", "--steps", "2", "--hidden", "16", "--latent-dim", "2",
              "--no-progress", "--n-samples", "0"]
    for name, beta in (("a", "4"), ("b", "4"), ("c", "2")):
        assert main(["train", "beta-vae", *common, "--beta", beta, "--out", str(tmp_path / name)]) == 0
    ids = {n: json.loads((tmp_path / n / "config.json").read_text())["run_id"] for n in "abc"}
    assert len(set(ids.values())) == 3 and all(len(i) == 32 for i in ids.values())
    assert ckpt.load_checkpoint(tmp_path / "a" / "checkpoints" / "ckpt-00000002.pt")["run_id"] == ids["a"]
    capsys.readouterr()
    intruder = tmp_path / "b" / "checkpoints" / "ckpt-00000003.pt"
    shutil.copy(tmp_path / "a" / "checkpoints" / "ckpt-00000002.pt", intruder)  # same command, another run
    for argv in (["sample", str(tmp_path / "b"), "-n", "2", "--out", str(tmp_path / "s.png")],
                 ["eval", str(tmp_path / "b"), "--metric", "nll", "-k", "2"],
                 ["train", "beta-vae", "--out", str(tmp_path / "b"), "--resume", "--steps", "4", "--no-progress"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "does not belong to the run" in err and "another run" in err and err.count("\n") == 1, err
    old = torch.load(tmp_path / "c" / "checkpoints" / "ckpt-00000002.pt", weights_only=True)
    del old["run_id"]  # as written before run ids: its config (beta 2) still tells it apart
    torch.save(old, intruder)
    assert main(["sample", str(tmp_path / "b"), "-n", "2", "--out", str(tmp_path / "s.png")]) == 2
    assert "its model config is not the run's config.json" in capsys.readouterr().err
    assert main(["sample", str(intruder), "-n", "2", "--out", str(tmp_path / "s.png")]) == 0  # the file alone: fine
    intruder.unlink()
    assert main(["train", "beta-vae", "--out", str(tmp_path / "b"), "--resume", "--steps", "4", "--no-progress"]) == 0
    assert json.loads((tmp_path / "b" / "config.json").read_text())["run_id"] == ids["b"]  # kept by the resume
