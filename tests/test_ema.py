"""EMA of the generator's weights (dgm.nn.ema): its formula, its place in the checkpoint, and sampling with it."""
import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from dgm import load
from dgm.cli import main
from dgm.data import load_dataset
from dgm.models import GANConfig, build_model
from dgm.nn.ema import ema_copy, ema_update
from dgm.training import STEPS, TrainConfig, Trainer

POINTS = dict(channels=2, height=1, width=1, levels=0)


def test_ema_update_equals_the_formula_on_hand_values():
    net = nn.Sequential(nn.Linear(1, 1), nn.BatchNorm1d(1))
    shadow = ema_copy(net)
    assert not any(p.requires_grad for p in shadow.parameters())
    w = [2.0, 4.0, 8.0, 16.0]  # the weight after updates 1..4; decay 0.5, start 2: copy, copy, then average
    for t, v in enumerate(w, 1):
        with torch.no_grad():
            net[0].weight.fill_(v)
            net[1].running_mean.fill_(10 * v)
        ema_update(shadow, net, 0.5, step=t, start=2)
        expect = {1: 2.0, 2: 4.0, 3: 0.5 * 4.0 + 0.5 * 8.0, 4: 0.5 * 6.0 + 0.5 * 16.0}[t]
        assert shadow[0].weight.item() == expect
        assert shadow[1].running_mean.item() == 10 * v  # buffers are copied, not averaged


def test_ema_in_training_equals_its_formula_after_a_few_steps(tmp_path):
    torch.manual_seed(0)
    decay, start = 0.9, 2
    model = build_model("gan", dict(POINTS, hidden=16, layers=2, ema_decay=decay, ema_start=start))
    step = STEPS.get("gan")(model)
    data = load_dataset("ring8", "val")
    Trainer(step, data, TrainConfig(steps=10, batch_size=32, progress=False, n_samples=0), tmp_path)
    expect = None
    for t in range(1, 6):  # non-saturating: n_critic 1, so each step updates G and then its EMA
        step((data.points[32 * t:32 * (t + 1)], None))
        w = {k: v.double() for k, v in model.generator.state_dict().items()}
        expect = w if t <= start else {k: decay * expect[k] + (1 - decay) * w[k] for k in w}
    got = model.generator_ema.state_dict()
    first = next(iter(got))
    assert not torch.equal(got[first], model.generator.state_dict()[first])
    for k in got:
        assert torch.allclose(got[k].double(), expect[k], rtol=1e-6, atol=1e-7), k


def _train(out, *extra):
    args = ["train", "gan", "--data", "ring8", "--batch-size", "32", "--hidden", "16", "--layers", "2",
            "--no-progress", "--n-samples", "0", "--ckpt-every", "2", "--deterministic", "--out", str(out), *extra]
    assert main(args) == 0


def _final(run):
    return torch.load(sorted((Path(run) / "checkpoints").glob("ckpt-*.pt"))[-1], weights_only=True)


@pytest.fixture(scope="module")
def ema_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ema")
    _train(root / "full", "--ema-decay", "0.8", "--ema-start", "1", "--steps", "4")
    _train(root / "half", "--ema-decay", "0.8", "--ema-start", "1", "--steps", "2")
    assert main(["train", "gan", "--out", str(root / "half"), "--resume", "--steps", "4", "--no-progress"]) == 0
    return root


def test_ema_is_checkpointed_and_survives_resume_bit_for_bit(ema_runs):
    a, b = _final(ema_runs / "full"), _final(ema_runs / "half")
    keys = [k for k in a["model"] if k.startswith("generator_ema.")]
    assert keys and set(a["model"]) == set(b["model"])
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_sampling_uses_the_ema_by_default_and_raw_weights_on_request(ema_runs, tmp_path, capsys):
    run = ema_runs / "full"
    m = load(run)
    z = torch.randn(5, m.config.latent_dim)
    assert torch.equal(m.sample(5, z=z), m.generator_ema(z))
    assert torch.equal(m.sample(5, z=z, ema=False), m.generator(z))
    assert not torch.equal(m.sample(5, z=z), m.sample(5, z=z, ema=False))
    raw = load(run, ema=False)
    assert torch.equal(raw.sample(5, z=z), m.generator(z))
    for flag, ref in (([], m), (["--no-ema"], raw)):
        out = tmp_path / f"s{len(flag)}.pt"
        assert main(["sample", str(run), "-n", "6", "--save-tensor", str(out), "--out", str(tmp_path / "s.png"),
                     *flag]) == 0
        assert torch.equal(torch.load(out), ref.sample(6, generator=torch.Generator().manual_seed(0)))
    for flag, used in (([], True), (["--no-ema"], False)):  # dgm eval says which weights it sampled
        capsys.readouterr()
        assert main(["eval", str(run), "--metric", "modes", *flag]) == 0
        assert json.loads(capsys.readouterr().out)["ema"] is used


def test_no_ema_is_refused_on_a_run_without_ema_and_old_runs_load(ema_runs, tmp_path, capsys):
    run = tmp_path / "old"  # a run written before EMA existed: no EMA key in its (flat) config nor in its checkpoints
    shutil.copytree(ema_runs / "full", run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["model_config"] = GANConfig.from_dict(cfg["model_config"]).flat()  # the flat config.json of that time
    for k in ("ema_decay", "ema_start"):
        del cfg["model_config"][k]
    (run / "config.json").write_text(json.dumps(cfg))
    for f in (run / "checkpoints").glob("*.pt"):
        state = torch.load(f, weights_only=True)
        state["model"] = {k: v for k, v in state["model"].items() if not k.startswith("generator_ema.")}
        if "model_config" in state:  # the checkpoint describes the same old config as its run
            state["model_config"] = cfg["model_config"]
        torch.save(state, f)
    m = load(run)
    assert not m.has_ema and not any(k.startswith("generator_ema") for k in m.state_dict())
    m.sample(3)
    with pytest.raises(Exception, match="no EMA"):
        m.sample(3, ema=True)
    for cmd in (["sample", str(run), "--no-ema"], ["eval", str(run), "--no-ema", "--metric", "modes"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("dgm: error: --no-ema") and "\n" not in err


@pytest.mark.parametrize("opts,msg", [(["--ema-decay", "1"], "--ema-decay"), (["--ema-start", "3"], "--ema-start")])
def test_bad_ema_options_are_one_line_errors(tmp_path, capsys, opts, msg):
    assert main(["train", "gan", "--data", "ring8", "--steps", "1", "--out", str(tmp_path / "r"), *opts]) == 2
    assert capsys.readouterr().err.startswith(f"dgm: error: {msg}")
