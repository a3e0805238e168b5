"""Domain adaptation (issue 36): the gradient reversal layer, the three adversarial losses and DANN's schedules
against their formulas, the domain pairs (deterministic, shifted, labels kept), exact resume under the schedules,
one-line refusals, and the adaptation metric against hand computations."""
from __future__ import annotations

import json
import math
import signal

import numpy as np
import pytest
import torch

from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.data import load_dataset
from dgm.data.domains import DomainDataset, inverted, moons, noisy, rotate, textured, textures
from dgm.errors import DgmError
from dgm.metrics import adaptation as adaptation_metric
from dgm.metrics.adaptation import adaptation, domain_classifier_accuracy, gap_closed, proxy_a_distance
from dgm.models import build_model
from dgm.objectives.adaptation import (dann_lambda, dann_lr_factor, domain_loss, flipped_loss, reverse_gradient,
                                       uniform_loss)
from dgm.training.adapt_step import AdaptStep, feature_loss

POINTS = dict(data_kind="domains", channels=2, height=1, width=1, levels=0, num_classes=2, hidden=8)
IMAGES = dict(data_kind="domains", channels=3, height=8, width=8, levels=0, num_classes=10, hidden=8, filters=4)


def _sig(v):
    return 1 / (1 + math.exp(-v))


def _batch(model, b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * b, model.config.channels, generator=g)
    return model.features(x), b


# -- the gradient reversal layer and the losses ------------------------------------------------------------------

def test_reversal_layer_gives_features_minus_lambda_times_the_discriminators_gradient():
    torch.manual_seed(0)
    model = build_model("adapt", POINTS)
    x = torch.randn(12, 2)
    lam = 0.37
    # through the step's own path (reverse: D's loss behind the layer), gradients of F's weights and of f
    f = model.features(x)
    f.retain_grad()
    feature_loss("reverse", model.discriminator, f, 6, lam).backward()
    reversed_f = f.grad.clone()
    reversed_w = [p.grad.clone() for p in model.feature_net.parameters()]
    model.zero_grad()
    # a copy without the layer: the plain gradient of D's loss
    f2 = model.features(x)
    f2.retain_grad()
    d = model.discriminator(f2).reshape(-1)
    domain_loss(d[:6], d[6:]).backward()
    assert torch.equal(reversed_f, -lam * f2.grad)
    for a, p in zip(reversed_w, model.feature_net.parameters()):
        torch.testing.assert_close(a, -lam * p.grad, rtol=1e-6, atol=1e-7)
    assert f2.grad.abs().sum() > 0
    # the layer is the identity forward
    assert torch.equal(reverse_gradient(x, lam), x)


def test_losses_equal_their_formulas_on_hand_picked_logits():
    ds, dt = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 3.0])
    # D: source = 0, target = 1: BCE(d_s, 0) = -log(1 - s(d_s)), BCE(d_t, 1) = -log s(d_t)
    want_d = 0.5 * (np.mean([-math.log(1 - _sig(v)) for v in (0.0, 2.0)]) +
                    np.mean([-math.log(_sig(v)) for v in (-1.0, 3.0)]))
    want_flip = 0.5 * (np.mean([-math.log(_sig(v)) for v in (0.0, 2.0)]) +
                       np.mean([-math.log(1 - _sig(v)) for v in (-1.0, 3.0)]))
    want_uniform = np.mean([-0.5 * math.log(_sig(v)) - 0.5 * math.log(1 - _sig(v)) for v in (0.0, 2.0, -1.0, 3.0)])
    assert float(domain_loss(ds, dt)) == pytest.approx(want_d, rel=1e-6)
    assert float(flipped_loss(ds, dt)) == pytest.approx(want_flip, rel=1e-6)
    assert float(uniform_loss(ds, dt)) == pytest.approx(want_uniform, rel=1e-6)
    # confusion is minimal (log 2) where D says 1/2 for everything
    assert float(uniform_loss(torch.zeros(3), torch.zeros(3))) == pytest.approx(math.log(2), rel=1e-7)


def test_the_three_adversarial_losses_give_different_feature_gradients():
    torch.manual_seed(0)
    model = build_model("adapt", POINTS)
    x = torch.randn(12, 2)
    grads = {}
    for kind in ("reverse", "flip", "uniform"):
        f = model.features(x).detach().requires_grad_()
        feature_loss(kind, model.discriminator, f, 6, 0.8).backward()
        grads[kind] = f.grad
    for a, b in (("reverse", "flip"), ("reverse", "uniform"), ("flip", "uniform")):
        assert not torch.allclose(grads[a], grads[b]), (a, b)


def test_schedules_equal_their_formulas():
    for p in (0.0, 0.1, 0.5, 1.0):
        assert dann_lambda(p) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1, rel=1e-12)
        assert dann_lr_factor(p) == pytest.approx((1 + 10 * p) ** -0.75, rel=1e-12)
    assert dann_lambda(0.0) == 0.0 and dann_lambda(1.0) > 0.9999


def test_a_run_logs_lambda_and_lr_of_the_dann_schedules(tmp_path):
    run, steps = tmp_path / "run", 8
    assert main(["train", "adapt", "--data", "moons:moons-rotated", "--steps", str(steps), "--batch-size", "16",
                 "--out", str(run), "--no-progress", "--log-every", "1", "--n-samples", "0", "--hidden", "4",
                 "--lr", "0.02", "--domain-weight", "0.5", "--eval-every", "1000"]) == 0
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == "train"]
    assert len(rows) == steps
    for r in rows:
        p = (r["step"] - 1) / steps  # the row of step k logs what step k used: progress (k - 1) / steps
        assert r["lambda"] == pytest.approx(0.5 * (2 / (1 + math.exp(-10 * p)) - 1), rel=1e-6, abs=1e-7)
        after = r["step"] / steps  # the engine logs the rate after the step's update: that of the next step
        assert r["lr"] == pytest.approx(0.02 / (1 + 10 * after) ** 0.75, rel=1e-6)
        assert {"loss_class", "loss_domain", "domain_acc"} <= set(r)


# -- the domain pairs --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["digits:digits-textured", "digits:digits-inverted", "moons:moons-rotated"])
def test_domain_pairs_are_deterministic_shifted_and_keep_labels(name):
    a, b = load_dataset(name, "train"), load_dataset(name, "train")
    assert isinstance(a, DomainDataset)
    for which in ("source", "target"):
        assert all(torch.equal(u, v) for u, v in zip(a.domain(which), b.domain(which)))
    (xs, ys), (xt, yt) = a.domain("source"), a.domain("target")
    assert xs.shape == xt.shape and len(set(ys.tolist())) == a.num_classes
    test = load_dataset(name, "test")
    assert not torch.equal(test.domain("target")[0][:10], xt[:10])  # splits are different draws
    if name.startswith("digits"):
        assert torch.equal(ys, yt)  # the target is the source's images shifted: the same labels
        assert (xt - xs).abs().mean() > 0.3  # and visibly shifted
        assert xs.min() >= -1 and xs.max() <= 1 and xt.min() >= -1 and xt.max() <= 1
    if name == "digits:digits-textured":
        assert xs.shape[1] == 3 and torch.equal(xs[:, 0], xs[:, 2])  # source digits replicated to 3 channels
        assert not torch.equal(xt[:, 0], xt[:, 1])  # a colour texture
    if name == "digits:digits-inverted":
        assert torch.allclose(xt, -xs)  # 1 - x on [0, 1] is -x on [-1, 1]


def test_the_recipes_are_seeded_and_the_moons_are_rotated():
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(textures(5, 8, 8, 3), textures(5, 8, 8, 3))
    assert not torch.equal(textures(5, 8, 8, 3), textures(5, 8, 8, 4))
    assert torch.equal(textured(x, 1), textured(x, 1)) and textured(x, 1).shape == (5, 3, 8, 8)
    assert torch.equal(noisy(x, 1), noisy(x, 1)) and not torch.equal(noisy(x, 1), noisy(x, 2))
    assert torch.equal(inverted(x), 1 - x)
    # the target of moons:moons-rotated rotated back by 30 degrees is an ordinary draw of the moons
    data = load_dataset("moons:moons-rotated", "train")
    xt, yt = data.domain("target")
    back = rotate(xt.numpy(), -30.0)
    fresh, labels = moons(len(xt), 1)
    np.testing.assert_allclose(back, fresh, atol=1e-5)
    assert torch.equal(yt, torch.from_numpy(labels))
    other = load_dataset("moons:moons-rotated", "train", rotation=45)
    np.testing.assert_allclose(rotate(other.domain("target")[0].numpy(), -45.0), fresh, atol=1e-5)
    assert torch.equal(other.domain("source")[0], data.domain("source")[0])


def test_pairing_of_source_and_target_is_drawn_per_epoch_from_the_seed():
    data = load_dataset("digits:digits-inverted", "train")
    data.set_epoch(0, 1)
    a = data.take(range(20))
    data.set_epoch(0, 1)
    b = data.take(range(20))
    data.set_epoch(0, 2)
    c = data.take(range(20))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    x, y = data[3]
    assert x.shape == (2, 1, 8, 8) and y.shape == (2,)
    assert torch.equal(a[0][:, 0], data.domain("source")[0][:20])  # the source half in order, labels with it
    assert torch.equal(a[1][:, 0], data.domain("source")[1][:20])


# -- training: exact resume under the schedules, the oracle, refusals ---------------------------------------------

def _train(out, *extra):
    return main(["train", "adapt", "--data", "moons:moons-rotated", "--batch-size", "16", "--out", str(out),
                 "--no-progress", "--log-every", "1", "--n-samples", "0", "--hidden", "4", "--ckpt-every", "1000",
                 "--eval-every", "1000", *extra])


def test_a_run_interrupted_and_resumed_equals_the_uninterrupted_one_under_the_dann_schedules(tmp_path, monkeypatch):
    assert _train(tmp_path / "full", "--steps", "6") == 0
    step = AdaptStep.__call__

    def stop_after_three(self, batch):
        out = step(self, batch)
        if self.steps == 3:  # as SIGINT's handler does: the loop stops after this step, with a checkpoint
            self.engine._signal = signal.SIGINT
        return out

    monkeypatch.setattr(AdaptStep, "__call__", stop_after_three)
    assert _train(tmp_path / "half", "--steps", "6") != 0
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "half"))["step"] == 3
    monkeypatch.setattr(AdaptStep, "__call__", step)
    assert _train(tmp_path / "half", "--steps", "6", "--resume") == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("full", "half"))
    assert a["step"] == b["step"] == 6 and a["family_state"] == b["family_state"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for name in ("model", "domain"):
        for i, st in a["optimizers"][name]["state"].items():
            assert torch.equal(st["momentum_buffer"], b["optimizers"][name]["state"][i]["momentum_buffer"])


def test_oracle_trains_on_the_target_labels(tmp_path, monkeypatch):
    import torch.nn.functional as F

    seen = []
    ce = F.cross_entropy

    def spy(logits, labels, *a, **k):
        seen.append(labels.clone())
        return ce(logits, labels, *a, **k)

    monkeypatch.setattr("dgm.training.adapt_step.F.cross_entropy", spy)
    data = load_dataset("moons:moons-rotated", "train")
    data.set_epoch(0, 0)
    for oracle, half in ((False, 0), (True, 1)):
        seen.clear()
        out = tmp_path / f"o{oracle}"
        assert _train(out, "--steps", "1", *(["--oracle"] if oracle else [])) == 0
        cfg = json.loads((out / "config.json").read_text())["model_config"]
        assert cfg["oracle"] is oracle and cfg["domain_loss"] == ("none" if oracle else "reverse")
        labels = torch.cat([data.take([i])[1][:, half] for i in range(len(data))])
        # the labels of step 1 are those of the batch's source half (target half with --oracle)
        assert len(seen) == 1 and set(seen[0].tolist()) <= {0, 1}
        assert torch.equal(seen[0], labels[_first_batch(16)])


def _first_batch(b):
    from torch.utils.data import DistributedSampler

    data = load_dataset("moons:moons-rotated", "train")
    s = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True)
    s.set_epoch(0)
    return list(s)[:b]


@pytest.mark.parametrize("args,words", [
    (["--data", "digits"], "SOURCE:TARGET"),
    (["--data", "digits:digits-wavy"], "unknown target 'digits-wavy' for source digits"),
    (["--data", "cifar10:digits-textured"], "unknown source 'cifar10'"),
    (["--data", "digits:digits-inverted", "--rotation", "45"], "has no option rotation"),
    (["--data", "moons:moons-rotated", "--oracle", "--domain-loss", "flip"], "--oracle"),
    (["--data", "moons:moons-rotated", "--domain-loss", "none", "--domain-weight", "2"], "--domain-weight"),
    (["--data", "moons:moons-rotated", "--domain-loss", "sideways"], "--domain-loss must be one of"),
])
def test_wrong_data_and_options_are_refused_in_one_line(tmp_path, capsys, args, words):
    assert main(["train", "adapt", *args, "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("dgm: error:") and words in err, err
    assert not (tmp_path / "r" / "config.json").exists()


def test_other_models_refuse_a_domain_pair(tmp_path, capsys):
    assert main(["train", "gan", "--data", "digits:digits-inverted", "--steps", "1", "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "domain-adaptation pair" in err


# -- the metric --------------------------------------------------------------------------------------------------

class _Fake:
    """A stand-in run: features = the inputs, class = [x_0 > 0]."""

    capabilities = ("adapt",)
    device = torch.device("cpu")
    run_config = {"model": "adapt", "data": {"name": "fake"}}

    def encode(self, x, domain):
        return x

    def classify(self, x, domain):
        return torch.stack([-x[:, 0], x[:, 0]], 1)


def test_the_metric_equals_a_hand_computation_on_a_tiny_fake(monkeypatch):
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(40, 2, generator=g) + torch.tensor([0.0, 5.0])  # source up, target down: separable domains
    xt = torch.randn(40, 2, generator=g) - torch.tensor([0.0, 5.0])
    ys, yt = (xs[:, 0] > 0).long(), (xt[:, 0] > 0).long()
    yt[:10] = 1 - yt[:10]  # 10 of 40 target labels the rule gets wrong: accuracy 0.75
    data = DomainDataset("fake", "test", xs, ys, xt, yt, 2, points=True)
    out = adaptation(_Fake(), data)
    assert out["source_accuracy"] == 1.0 and out["target_accuracy"] == 0.75
    assert out["domain_accuracy"] == 1.0 and out["proxy_a_distance"] == 2.0 and out["domain_test_n"] == 40
    # --baselines: gap_closed = (0.75 - 0.5) / (1.0 - 0.5)
    accs = {"src": 0.5, "oracle": 1.0}
    monkeypatch.setattr(adaptation_metric, "_baseline", lambda path, *a: accs[path])
    out = adaptation(_Fake(), data, baselines="src,oracle")
    assert out["gap_closed"] == pytest.approx(0.5) and out["source_only_target_accuracy"] == 0.5
    with pytest.raises(DgmError, match="SRC_RUN,ORACLE_RUN"):
        adaptation(_Fake(), data, baselines="src")


def test_metric_formulas_and_the_domain_classifier():
    assert proxy_a_distance(0.25) == pytest.approx(1.0) and proxy_a_distance(0.5) == 0.0
    assert gap_closed(0.8, 0.6, 1.0) == pytest.approx(0.5) and gap_closed(0.6, 0.6, 1.0) == 0.0
    assert math.isnan(gap_closed(0.7, 0.6, 0.6))
    rs = np.random.RandomState(0)
    same = domain_classifier_accuracy(rs.randn(400, 3), rs.randn(400, 3), seed=0)[0]
    assert 0.35 < same < 0.65  # one distribution: chance
    apart = domain_classifier_accuracy(rs.randn(50, 3) + 4, rs.randn(50, 3) - 4, seed=0)
    assert apart == (1.0, 50)


def test_eval_and_sample_on_a_trained_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "--steps", "3") == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--metric", "adaptation"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"target_accuracy", "source_accuracy", "domain_accuracy", "proxy_a_distance"} <= set(out)
    assert out["proxy_a_distance"] == pytest.approx(2 * (1 - 2 * (1 - out["domain_accuracy"])))
    assert main(["eval", str(run), "--metric", "adaptation", "--baselines", f"{run},{run}"]) == 0
    assert json.loads(capsys.readouterr().out)["gap_closed"] is None  # equal baselines: undefined, null
    assert main(["sample", str(run), "--figure", "samples"]) == 2
    assert "can make: domains" in capsys.readouterr().err
    assert main(["sample", str(run)]) == 0  # the default figure: both domains' test points by predicted class
    assert capsys.readouterr().out.split() == [str(run / "samples" / "domains.png")]
    assert (run / "samples" / "domains.png").stat().st_size > 0


@pytest.mark.slow
def test_reversal_beats_the_source_only_baseline_on_rotated_moons(tmp_path, capsys):
    acc = {}
    for kind in ("none", "reverse"):
        run = tmp_path / kind
        assert main(["train", "adapt", "--data", "moons:moons-rotated", "--domain-loss", kind, "--steps", "600",
                     "--batch-size", "64", "--lr", "0.1", "--seed", "1", "--out", str(run), "--no-progress",
                     "--n-samples", "0", "--eval-every", "100000"]) == 0
        capsys.readouterr()
        assert main(["eval", str(run), "--metric", "adaptation"]) == 0
        acc[kind] = json.loads(capsys.readouterr().out)["target_accuracy"]
    # the claim holds at this fixed seed (a CPU run is repeatable bit for bit); with these flags seeds 0 and 3 gain
    # too (val target accuracy 0.94 vs 0.79, 0.96 vs 0.79) but seed 2 does not (0.71 vs 0.75): not every seed
    assert acc["reverse"] > acc["none"] + 0.1, acc


@pytest.mark.skipif(not __import__("os").path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)")
@pytest.mark.parametrize("name,channels", [("fashion-mnist:fashion-textured", 3), ("fashion-mnist:fashion-noisy", 1)])
def test_fashion_pairs_are_deterministic_shifted_and_keep_labels(name, channels):
    a, b = load_dataset(name, "test"), load_dataset(name, "test")
    (xs, ys), (xt, yt) = a.domain("source"), a.domain("target")
    assert xt.shape == (10000, channels, 28, 28) and xs.shape == xt.shape
    assert torch.equal(xt, b.domain("target")[0]) and torch.equal(ys, yt)
    assert (xt - xs).abs().mean() > 0.1
    assert a.model_fields() == {"data_kind": "domains", "channels": channels, "height": 28, "width": 28, "levels": 0,
                                "num_classes": 10}


# -- ADDA (--adda-pretrain N) -------------------------------------------------------------------------------------

def test_inverted_label_loss_equals_its_formula():
    from dgm.objectives.adaptation import inverted_label_loss

    dt = torch.tensor([-1.0, 0.5, 3.0])  # the target features called source (domain 0): -log(1 - s(l))
    want = np.mean([-math.log(1 - _sig(v)) for v in (-1.0, 0.5, 3.0)])
    assert float(inverted_label_loss(dt)) == pytest.approx(want, rel=1e-6)


def _weights(run, step, prefix):
    state = ckpt.load_checkpoint(run / "checkpoints" / f"ckpt-{step:08d}.pt")["model"]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _same_weights(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_adda_freezes_the_source_encoder_and_classifier_and_trains_an_untied_target_encoder(tmp_path):
    run = tmp_path / "adda"
    assert _train(run, "--steps", "4", "--adda-pretrain", "2", "--ckpt-every", "2") == 0
    for part in ("feature_net.", "classifier."):  # frozen in stage two
        assert _same_weights(_weights(run, 2, part), _weights(run, 4, part)), part
    assert not _same_weights(_weights(run, 2, "discriminator."), _weights(run, 4, "discriminator."))
    assert not _same_weights(_weights(run, 4, "target_net."), _weights(run, 4, "feature_net."))
    cfg = json.loads((run / "config.json").read_text())["model_config"]
    assert cfg["domain_loss"] == "flip" and cfg["adda_pretrain"] == 2


def test_adda_target_encoder_starts_as_the_source_encoder(tmp_path, monkeypatch):
    # with the target encoder's loss made 0, Adam leaves it where stage two put it: the source encoder's weights
    monkeypatch.setattr("dgm.training.adapt_step.inverted_label_loss", lambda d: 0 * d.sum())
    run = tmp_path / "adda"
    assert _train(run, "--steps", "4", "--adda-pretrain", "2", "--ckpt-every", "2") == 0
    assert not _same_weights(_weights(run, 2, "target_net."), _weights(run, 2, "feature_net."))  # its own init
    assert _same_weights(_weights(run, 4, "target_net."), _weights(run, 2, "feature_net."))


def test_adda_resumed_across_the_stage_switch_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    assert _train(tmp_path / "full", "--steps", "5", "--adda-pretrain", "2") == 0
    step = AdaptStep.__call__

    def stop_after_two(self, batch):
        out = step(self, batch)
        if self.steps == 2:
            self.engine._signal = signal.SIGINT
        return out

    monkeypatch.setattr(AdaptStep, "__call__", stop_after_two)
    assert _train(tmp_path / "half", "--steps", "5", "--adda-pretrain", "2") != 0
    monkeypatch.setattr(AdaptStep, "__call__", step)
    assert _train(tmp_path / "half", "--steps", "5", "--resume") == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("full", "half"))
    assert a["step"] == b["step"] == 5
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_adda_runs_classify_the_target_with_the_target_encoder(tmp_path, capsys):
    import dgm

    run = tmp_path / "adda"
    assert _train(run, "--steps", "4", "--adda-pretrain", "2") == 0
    model = dgm.load(run)
    data = load_dataset("moons:moons-rotated", "test")
    xt, yt = data.domain("target")
    assert not torch.equal(model.classify(xt, "target"), model.classify(xt, "source"))
    capsys.readouterr()
    assert main(["eval", str(run), "--metric", "adaptation"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target_accuracy"] == pytest.approx(float((model.classify(xt, "target").argmax(1) == yt).float().mean()))


@pytest.mark.parametrize("args,words", [
    (["--oracle"], "drop --oracle"), (["--domain-loss", "reverse"], "inverted labels"),
    (["--gamma", "3"], "--gamma"), (["--lambda-schedule", "constant"], "--lambda-schedule")])
def test_adda_refuses_what_does_not_apply_in_one_line(tmp_path, capsys, args, words):
    assert _train(tmp_path / "r", "--steps", "1", "--adda-pretrain", "2", *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err, err


@pytest.mark.slow
def test_adda_stage_two_raises_target_accuracy_over_its_own_source_pretraining(tmp_path, capsys):
    run = tmp_path / "adda"
    assert main(["train", "adapt", "--data", "moons:moons-rotated", "--adda-pretrain", "1500", "--steps", "3000",
                 "--batch-size", "64", "--seed", "1", "--out", str(run), "--no-progress", "--n-samples", "0",
                 "--eval-every", "100000", "--ckpt-every", "1500"]) == 0
    acc = {}
    for step in (1500, 3000):
        capsys.readouterr()
        assert main(["eval", str(run / "checkpoints" / f"ckpt-{step:08d}.pt"), "--metric", "adaptation"]) == 0
        acc[step] = json.loads(capsys.readouterr().out)["target_accuracy"]
    # seed 1, as run here: val target accuracy 0.99 at the end; a source-only run of 1500 steps with the same Adam
    # reaches 0.75
    assert acc[3000] > acc[1500] + 0.1, acc


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--adda-pretrain", "2"]], ids=["reverse", "adda"])
def test_two_processes_equal_one_process_on_the_union_batch(tmp_path, extra):
    import os
    import subprocess
    import sys

    from conftest import ROOT, torchrun

    common = ["train", "adapt", "--data", "digits:digits-textured", "--batch-size", "32", "--steps", "4",
              "--hidden", "8", "--filters", "4", "--n-samples", "0", "--no-progress", "--device", "cpu", *extra]
    torchrun(common, tmp_path / "ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "dgm.cli", *common, "--out", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("ddp", "one"))
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    from dgm.training import seed_everything

    seed_everything(0)  # as the run did before building its model: its initial weights
    init = build_model("adapt", json.loads((tmp_path / "one" / "config.json").read_text())["model_config"])
    parts = ("feature_net.", "classifier.", "discriminator.") + (("target_net.",) if extra else ())
    for part in parts:  # the runs moved every part (not two untouched inits compared)
        moved = max(float((b["model"][k] - v).abs().max()) for k, v in init.state_dict().items() if k.startswith(part))
        assert moved > 1e-5, part
