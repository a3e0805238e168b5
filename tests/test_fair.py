"""Fair representations (issue 36): LAFTR's adversary objective and the cross-entropy adversary equal their formulas,
the fairness metrics equal hand computations, and with fair-weight 0 the adversary never reaches the encoder."""
import json
import math

import numpy as np
import pytest
import torch

from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.data import load_dataset
from dgm.metrics.fairness import gaps, probe
from dgm.objectives.fairness import adversary_losses, laftr_objective


def test_laftr_objective_equals_its_formula():
    h = torch.tensor([0.9, 0.2, 0.6, 0.1, 0.7])
    a = torch.tensor([1, 0, 1, 0, 0])
    y = torch.tensor([1, 1, 0, 0, 1])
    # dp: 2 - mean over a=0 of |h - 0| - mean over a=1 of |h - 1|
    want_dp = 2 - (0.2 + 0.1 + 0.7) / 3 - (0.1 + 0.4) / 2
    assert float(laftr_objective(h, a, y, "dp")) == pytest.approx(want_dp)
    # eo: groups (a, y): (0,1): 0.2, 0.7; (0,0): 0.1; (1,1): 0.1; (1,0): 0.4
    want_eo = 4 - (0.2 + 0.7) / 2 - 0.1 - 0.1 - 0.4
    assert float(laftr_objective(h, a, y, "eo")) == pytest.approx(want_eo)
    # a group absent from the batch adds neither its term nor its constant
    assert float(laftr_objective(h[:2], a[:2], y[:2], "eo")) == pytest.approx(2 - 0.1 - 0.2)
    logit = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0])
    adv, enc = adversary_losses(logit, a, y, "dp", "l1")
    assert float(enc) == pytest.approx(float(laftr_objective(torch.sigmoid(logit), a, y, "dp"))) and float(adv) == -float(enc)
    adv, enc = adversary_losses(logit, a, y, "dp", "ce")
    ce = -np.mean([math.log(1 / (1 + math.exp(-l))) if t else math.log(1 - 1 / (1 + math.exp(-l)))
                   for l, t in zip(logit.tolist(), a.tolist())])
    assert float(adv) == pytest.approx(ce) and float(enc) == pytest.approx(-ce)


def test_fairness_gaps_by_hand():
    pred = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0])
    y = torch.tensor([1, 0, 1, 0, 1, 0, 1, 1])
    a = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    g = gaps(pred, y, a)
    assert g["accuracy"] == pytest.approx(5 / 8)
    assert g["dp_gap"] == pytest.approx(abs(3 / 4 - 1 / 4))
    assert g["eo_gap_tpr"] == pytest.approx(abs(2 / 2 - 1 / 3))  # a=0: y=1 at 0, 2 both predicted 1; a=1: 1 of 3
    assert g["eo_gap_fpr"] == pytest.approx(abs(1 / 2 - 0 / 1))
    rng = np.random.default_rng(0)
    a_np = rng.integers(0, 2, 400)
    z_info = np.stack([a_np + 0.01 * rng.standard_normal(400), rng.standard_normal(400)], 1)
    assert probe(z_info[:300], a_np[:300], z_info[300:], a_np[300:]) == 1.0
    z_none = rng.standard_normal((400, 3))
    assert probe(z_none[:300], a_np[:300], z_none[300:], a_np[300:]) < 0.65


def _state(run):
    return ckpt.load_checkpoint(ckpt.latest_checkpoint(run))["model"]


def _train(tmp_path, name, *extra):
    run = tmp_path / name
    assert main(["train", "fair", "--data", "fair-toy", "--steps", "5", "--batch-size", "32", "--hidden", "8",
                 "--no-progress", "--out", str(run), *extra]) == 0
    return _state(run)


def test_with_fair_weight_zero_the_adversary_never_reaches_the_encoder(tmp_path):
    l1 = _train(tmp_path, "l1", "--fair-weight", "0")
    ce = _train(tmp_path, "ce", "--fair-weight", "0", "--adversary", "ce")
    enc = [k for k in l1 if k.startswith(("encoder.", "classifier."))]
    assert enc and all(torch.equal(l1[k], ce[k]) for k in enc)  # the same encoder whatever the adversary did
    assert any(not torch.equal(l1[k], ce[k]) for k in l1 if k.startswith("adversary."))
    l1w = _train(tmp_path, "l1w", "--fair-weight", "1")
    cew = _train(tmp_path, "cew", "--fair-weight", "1", "--adversary", "ce")
    assert any(not torch.equal(l1w[k], cew[k]) for k in enc)  # with a weight, the adversary does reach it


def test_eval_sample_and_refusals(tmp_path, capsys):
    run = tmp_path / "fair"
    assert main(["train", "fair", "--data", "fair-toy", "--steps", "20", "--batch-size", "64", "--fairness", "eo",
                 "--recon-weight", "0.5", "--adv-steps", "2", "--no-progress", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {"accuracy", "dp_gap", "eo_gap_tpr", "eo_gap_fpr", "probe_accuracy", "majority_rate"} <= set(r)
    test = load_dataset("fair-toy", "test")
    share = float(test.sensitive.double().mean())
    assert r["majority_rate"] == pytest.approx(max(share, 1 - share)) and r["n"] == len(test)
    assert main(["sample", str(run)]) == 0 and capsys.readouterr().out.strip().endswith(".png")
    for argv, msg in ((["--data", "ring8"], "sensitive attribute"), (["--data", "fair-toy", "--fairness", "x"],
                                                                      "--fairness must be"),
                      (["--data", "digits"], "tabular rows")):
        code = main(["train", "fair", *argv, "--steps", "1", "--no-progress", "--out", str(tmp_path / "bad")])
        err = capsys.readouterr().err
        assert code == 2 and msg in err and err.count("\n") == 1, err
    assert main(["eval", str(run), "--metric", "fairness"]) == 0
    capsys.readouterr()


def test_fair_toy_is_deterministic_and_unfair_by_construction():
    a, b = load_dataset("fair-toy", "train"), load_dataset("fair-toy", "train")
    assert torch.equal(a.points, b.points) and torch.equal(a.labels, b.labels)
    x, ya = a.take(torch.arange(5))
    assert x.shape == (5, 8) and ya.shape == (5, 2) and torch.equal(ya[:, 1], a.sensitive[:5])
    rate = [float(a.labels[a.sensitive == g].double().mean()) for g in (0, 1)]
    assert abs(rate[0] - rate[1]) > 0.05  # the base rates differ between the groups
