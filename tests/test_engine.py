"""The training engine: exact resume, signals, DDP equivalence, failures, safe checkpoints."""
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import dgm
from dgm.cli import main
from dgm.errors import DgmError
from dgm.training import TrainConfig, Trainer, TrainingStopped, TrainStep
from dgm import checkpoint as ckpt

from conftest import ROOT, TINY, torchrun


def _train(out, *extra, model="pixelcnn"):
    args = ["train", model, "--data", "digits", "--binarize", "dynamic", "--batch-size", "256", "--out", str(out),
            "--n-samples", "0", "--no-progress", "--ckpt-every", "1000", "--log-every", "1", "--deterministic", *TINY,
            *extra]
    return main(args)


def _final_state(run):
    return ckpt.load_checkpoint(ckpt.latest_checkpoint(run))


def _assert_same_state(a, b):
    assert a["step"] == b["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = a["optimizers"]["model"]["state"], b["optimizers"]["model"]["state"]
    for i in sa:
        for k in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[i][k], sb[i][k])
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def test_resume_equals_uninterrupted_run_bit_for_bit(tmp_path):
    # 4 batches of 256 per epoch on digits: 6 steps cross an epoch boundary; dynamic binarization
    # draws from the global RNG, so its state must be restored too.
    assert _train(tmp_path / "full", "--steps", "6") == 0
    assert _train(tmp_path / "half", "--steps", "3") == 0
    assert _train(tmp_path / "half", "--steps", "6", "--resume") == 0
    _assert_same_state(_final_state(tmp_path / "full"), _final_state(tmp_path / "half"))
    rows = [json.loads(ln) for ln in (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()]
    full = [json.loads(ln) for ln in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows if r["split"] == "train"] == [r["loss"] for r in full if r["split"] == "train"]


@pytest.mark.slow  # multi-second; moved out of the default run to keep it under 10 minutes
def test_sigint_saves_checkpoint_and_resume_matches(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    base = [sys.executable, "-m", "dgm.cli", "train", "pixelcnn", "--data", "digits", "--binarize", "--batch-size", "32",
            "--n-samples", "0", "--no-progress", "--ckpt-every", "100000", "--log-every", "1", "--hidden", "32",
            "--layers", "4", "--deterministic"]
    run = tmp_path / "interrupted"
    proc = subprocess.Popen(base + ["--steps", "100000", "--out", str(run)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("dgm:")]
    assert len(lines) == 1 and "interrupted by SIGINT" in lines[0] and "--resume" in lines[0]
    assert "Traceback" not in err
    state = _final_state(run)
    stopped_at = state["step"]
    assert stopped_at >= 3
    # resuming to stopped_at + 2 steps equals an uninterrupted run of that length
    target = str(stopped_at + 2)
    subprocess.run(base + ["--steps", target, "--out", str(run), "--resume"], env=env, check=True, capture_output=True)
    subprocess.run(base + ["--steps", target, "--out", str(tmp_path / "straight")], env=env, check=True, capture_output=True)
    _assert_same_state(_final_state(tmp_path / "straight"), _final_state(run))


def test_ddp_two_processes_equal_one_process_on_the_union_batch(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    common = ["train", "pixelcnn", "--data", "digits", "--binarize", "--batch-size", "64", "--steps", "3",
              "--n-samples", "0", "--no-progress", "--device", "cpu", *TINY]
    torchrun(common, tmp_path / "ddp")
    single = subprocess.run([sys.executable, "-m", "dgm.cli", *common, "--out", str(tmp_path / "one")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    a, b = _final_state(tmp_path / "ddp"), _final_state(tmp_path / "one")
    moved = 0.0
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    # and the runs did move the weights (the comparison is not between two untouched inits)
    torch.manual_seed(0)
    init = dgm.build_model("pixelcnn", json.loads((tmp_path / "one" / "config.json").read_text())["model_config"])
    for k, v in init.state_dict().items():
        moved = max(moved, (v - b["model"][k]).abs().max().item())
    assert moved > 1e-4


class _NaNStep(TrainStep):
    def setup(self, engine):
        super().setup(engine)
        engine.optimizer("model", self.model.parameters())

    def __call__(self, batch):
        x, _ = batch
        loss = self.model.log_prob(x).mean() * (float("nan") if self.engine.global_step >= 2 else 1.0)
        self.engine.update(-loss, "model")
        return {"loss": loss.detach()}


def test_non_finite_loss_stops_with_clear_message_and_keeps_good_checkpoints(tmp_path):
    data = dgm.load_dataset("digits", "train", binarize="fixed")
    model = dgm.build_model("pixelcnn", dict(channels=1, height=8, width=8, levels=2, hidden=8, layers=1))
    cfg = TrainConfig(steps=10, batch_size=16, ckpt_every=1, progress=False, n_samples=0)
    trainer = Trainer(_NaNStep(model), data, cfg, tmp_path)
    with pytest.raises(TrainingStopped) as e:
        trainer.fit()
    msg = str(e.value)
    assert "\n" not in msg and "nan" in msg and "step 3" in msg and "--lr" in msg
    assert e.value.exit_code != 0
    saved = ckpt.list_checkpoints(tmp_path)
    assert saved and ckpt.load_checkpoint(saved[-1])["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt.load_checkpoint(saved[-1])["model"].values())


def test_keep_last_k_and_atomic_files(tmp_path):
    assert _train(tmp_path / "r", "--steps", "5", "--ckpt-every", "1", "--keep-last", "2") == 0
    names = sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir())
    assert names == ["best.pt", "ckpt-00000004.pt", "ckpt-00000005.pt"]  # best.pt is never pruned


def test_run_directory_contents_and_load(tiny_run):
    assert (tiny_run / "config.json").is_file()
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["model"] == "gated-pixelcnn" and cfg["data"]["binarize"] == "fixed"
    rows = [json.loads(ln) for ln in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert {"train", "val"} <= {r["split"] for r in rows}
    assert any(p.name.startswith("events.out.tfevents") for p in (tiny_run / "tb").iterdir())
    assert list((tiny_run / "samples").glob("*.png"))
    model = dgm.load(tiny_run)
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tiny_run))
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k])
    x = dgm.load_dataset("digits", "test", binarize="fixed").tensors()[0][:8]
    assert model.log_prob(x).shape == (8,)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_arbitrary_pickle_checkpoint_is_refused_without_running_code(tmp_path, tiny_run, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    marker = tmp_path / "pwned"
    for p in ckpt.list_checkpoints(run):
        p.unlink()
    with open(ckpt.checkpoint_path(run, 99), "wb") as f:
        pickle.dump({"model": _Evil(marker)}, f)
    with pytest.raises(DgmError, match="refused"):
        dgm.load(run)
    assert main(["eval", str(run), "--metric", "nll"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "refused" in err
    assert not marker.exists()


def test_existing_run_is_not_overwritten_without_resume(tmp_path, capsys):
    assert _train(tmp_path / "r", "--steps", "2") == 0
    before = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    assert _train(tmp_path / "r", "--steps", "2") == 2
    assert "already holds a run" in capsys.readouterr().err
    after = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    assert before == after


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert _train(tmp_path / "none", "--steps", "2", "--resume") == 2
    assert "not a dgm run directory" in capsys.readouterr().err


class _ProbeStep(TrainStep):
    """Records the gradient norm after the engine's update and the learning rate used."""

    def setup(self, engine):
        super().setup(engine)
        engine.optimizer("model", self.model.parameters())
        self.norms, self.lrs = [], []

    def __call__(self, batch):
        x, _ = batch
        loss = -self.model.log_prob(x).mean() * 1000.0  # large gradients
        self.lrs.append(self.engine.optimizers["model"].param_groups[0]["lr"])
        self.engine.update(loss, "model")
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return {"loss": loss.detach()}


def _probe(tmp_path, **cfg):
    data = dgm.load_dataset("digits", "train", binarize="fixed")
    model = dgm.build_model("pixelcnn", dict(channels=1, height=8, width=8, levels=2, hidden=8, layers=1))
    step = _ProbeStep(model)
    Trainer(step, data, TrainConfig(batch_size=16, progress=False, n_samples=0, **cfg), tmp_path).fit()
    return step


def test_gradient_clipping_bounds_the_global_norm(tmp_path):
    free = _probe(tmp_path / "a", steps=3)
    clipped = _probe(tmp_path / "b", steps=3, grad_clip=0.5)
    assert max(free.norms) > 0.5
    assert all(n <= 0.5 + 1e-5 for n in clipped.norms)


def test_learning_rate_schedules(tmp_path):
    import math

    cos = _probe(tmp_path / "c", steps=4, lr=0.1, schedule="cosine")
    assert cos.lrs == pytest.approx([0.1 * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)])
    warm = _probe(tmp_path / "w", steps=3, lr=0.1, warmup_steps=2)
    assert warm.lrs == pytest.approx([0.05, 0.1, 0.1])
    exp = _probe(tmp_path / "e", steps=3, lr=0.1, schedule="exponential", lr_decay=0.5)
    assert exp.lrs == pytest.approx([0.1, 0.05, 0.025])


def test_sample_grids_every_n_steps(tmp_path):
    assert _train(tmp_path / "r", "--steps", "5", "--sample-every", "2", "--n-samples", "4") == 0
    names = sorted(p.name for p in (tmp_path / "r" / "samples").iterdir())
    assert names == ["step-00000002.png", "step-00000004.png", "step-00000005.png"]


def test_best_checkpoint_holds_the_lowest_validation_nll(tmp_path):
    run = tmp_path / "r"
    assert _train(run, "--steps", "6", "--eval-every", "1", "--lr", "0.05") == 0
    vals = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if '"val"' in ln]
    best_row = min(vals, key=lambda r: r["nll_nats"])
    best = ckpt.load_checkpoint(ckpt.best_path(run))
    assert best["step"] == best_row["step"] and best["best"] == pytest.approx(best_row["nll_nats"])
    model = dgm.load(run, checkpoint="best")
    assert model.trained_steps == best_row["step"]
    assert main(["eval", str(run), "--checkpoint", "best", "--split", "val"]) == 0


def test_missing_best_checkpoint_is_a_clear_error(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    ckpt.best_path(run).unlink()
    assert main(["eval", str(run), "--checkpoint", "best"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--eval-every" in err


@pytest.mark.parametrize("eval_every,stop_step", [(2, 2), (0, 3)], ids=["mid-run", "final"])
def test_sigterm_during_validation_stops_at_the_next_order_with_a_checkpoint(tmp_path, capsys, monkeypatch,
                                                                              eval_every, stop_step):
    """A SIGTERM in the middle of a validation (MADE's 8-order ensemble: one network pass per order) ends it at the
    next order (dgm.interrupt), not after all 8, and the run exits 143 with its checkpoint; before, the validation
    ran to its end (minutes for an LMConv ensemble on Fashion-MNIST)."""
    import os
    import signal

    from dgm.models.made import MADE
    from dgm.training.steps import LikelihoodStep

    passes, state = [], {"val": False}
    conditionals = MADE.conditionals

    def counting(self, x, y=None, order=None):
        if state["val"]:
            passes.append(order)
            if len(passes) == 1:
                os.kill(os.getpid(), signal.SIGTERM)
        return conditionals(self, x, y, order)

    def validating(self, batches):  # the full 8-order ensemble (validation itself uses order 0 only)
        from dgm.metrics.nll import nll_from_batches

        state["val"] = True
        try:
            return nll_from_batches(self.model, batches)
        finally:
            state["val"] = False

    monkeypatch.setattr(MADE, "conditionals", counting)
    monkeypatch.setattr(LikelihoodStep, "evaluate", validating)
    out = tmp_path / "run"
    code = main(["train", "made", "--data", "digits", "--binarize", "--orders", "8", "--hidden", "16", "--steps", "3",
                 "--eval-every", str(eval_every), "--eval-share", "0", "--batch-size", "32", "--n-samples", "0",
                 "--no-progress",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 143 and "interrupted by SIGTERM" in err and err.strip().count("\n") == 0, err
    assert passes == [0]  # order 1 of the ensemble never ran
    assert _final_state(out)["step"] == stop_step
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)
    from dgm import interrupt
    assert interrupt.requested() is None  # nothing left behind for the next run in this process


def test_validation_of_an_order_ensemble_uses_one_order_and_says_so(tmp_path, capsys):
    """MADE with 4 orders: validation during training measures -log p(x; pi_0) (1/4 of the ensemble's cost), the
    closing line says so, and `dgm eval` keeps the 4-order ensemble."""
    from dgm.metrics.nll import nll_from_batches
    from dgm.data.batching import dataset_batches
    from dgm.runs import load_data

    out = tmp_path / "made"
    assert main(["train", "made", "--data", "digits", "--binarize", "--orders", "4", "--hidden", "16", "--steps", "3",
                 "--batch-size", "32", "--n-samples", "0", "--no-progress", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "(order 0 of 4; dgm eval: the 4-order ensemble)" in said
    logged = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if '"val"' in ln][-1]
    model = dgm.load(out)
    val = load_data(json.loads((out / "config.json").read_text())["data"], "val")
    with torch.no_grad():
        one = -torch.cat([model.log_prob(x, order=0) for x, _ in dataset_batches(val, 256, "cpu")]).double().mean()
    assert logged["nll_nats"] == pytest.approx(float(one), rel=1e-9)
    full = nll_from_batches(model, dataset_batches(val, 256, "cpu"))["nll_nats"]
    assert full < logged["nll_nats"] - 1e-6  # the ensemble is better than one of its orders (Jensen)
    assert main(["eval", str(out), "--metric", "nll", "--split", "val"]) == 0
    assert json.loads(capsys.readouterr().out)["nll_nats"] == pytest.approx(full, rel=1e-9)


@pytest.mark.parametrize("share,expect_all", [("0.1", False), ("0", True)])
def test_eval_every_keeps_validation_within_its_share_of_training_time(tmp_path, capsys, monkeypatch, share,
                                                                       expect_all):
    import time

    from dgm.training.steps import LikelihoodStep

    evaluate = LikelihoodStep.evaluate

    def slow(self, batches):  # a validation that costs far more than the tiny training steps
        time.sleep(0.3)
        return evaluate(self, batches)

    monkeypatch.setattr(LikelihoodStep, "evaluate", slow)
    out = tmp_path / "r"
    assert _train(out, "--steps", "8", "--eval-every", "1", "--eval-share", share) == 0
    steps = [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines() if '"val"' in ln]
    err = capsys.readouterr().err
    if expect_all:
        assert steps == list(range(1, 9)) and "--eval-share" not in err
    else:
        assert steps[0] == 1 and steps[-1] == 8 and len(steps) < 8  # the first and the final one always run
        assert err.count("validations are skipped until training catches up") == 1
