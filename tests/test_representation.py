"""`--metric representation` (issue 35): probes on an encoder's codes and the faithfulness of G(E(x)), each checked
against a brute-force reference or an exact value on a model whose answer is known."""
import json

import numpy as np
import pytest
import torch

from dgm.cli import main
from dgm.errors import DgmError
from dgm.metrics.representation import cyclic_others, probe_accuracies, reconstruction_ratio, representation
from dgm.runs import load_data


def _brute_1nn(train_x, train_y, test_x):
    d = ((test_x[:, None, :] - train_x[None]) ** 2).sum(-1)
    return train_y[d.argmin(1)]


def test_knn_probe_equals_brute_force_and_logistic_separates_what_is_separable():
    rng = np.random.default_rng(0)
    train_x, test_x = rng.normal(size=(200, 5)), rng.normal(size=(80, 5))
    train_y, test_y = rng.integers(0, 3, 200), rng.integers(0, 3, 80)
    got = probe_accuracies(train_x, train_y, test_x, test_y)
    assert got["knn_accuracy"] == pytest.approx((_brute_1nn(train_x, train_y, test_x) == test_y).mean(), abs=0)
    # random labels: no better than chance (3 classes), far from a separable set
    assert got["logistic_accuracy"] < 0.55
    # labels given by a linear rule: the logistic probe recovers it, the 1-NN nearly
    w = rng.normal(size=5)
    sep = lambda x: (x @ w > 0).astype(int)  # noqa: E731
    got = probe_accuracies(train_x, sep(train_x), test_x, sep(test_x))
    assert got["logistic_accuracy"] >= 0.95 and got["knn_accuracy"] > 0.8
    with pytest.raises(DgmError, match="--knn-k"):
        probe_accuracies(train_x[:3], train_y[:3], test_x, test_y, k=3)


def test_reconstruction_ratio_values():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert reconstruction_ratio(x, x, x[[1, 2, 0]]) == 0.0  # exact reconstruction
    const = torch.full_like(x, 1.0)
    assert reconstruction_ratio(x, const, const) == 1.0  # G(E(x)) the same for every x: no information about x
    # hand value: distances to recon 1, 1, 1; to the others' recon: |x0-x1|=5, |x1-x2|=5, |x2-x0|=10
    recon = x + torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    other = x[[1, 2, 0]]
    want = 1.0 / ((np.hypot(3 + 0, 4) + np.hypot(3, 4) + np.hypot(6, 8)) / 3)  # other recon = the other x exactly
    assert reconstruction_ratio(x, recon, other) == pytest.approx(want, rel=1e-12)


def test_cyclic_others_is_a_derangement():
    for n in (2, 3, 17):
        other = cyclic_others(n, torch.Generator().manual_seed(n))
        assert sorted(other.tolist()) == list(range(n)) and (other != torch.arange(n)).all()


class _Fake(torch.nn.Module):
    """An 'encoder' that is the identity (codes = pixels), with a chosen reconstruction."""

    def __init__(self, data, recon=None, scale=16.0):
        super().__init__()
        self.run_config = {"data": {"name": data}}
        self.recon, self.scale = recon, scale
        self.means = None

    device = torch.device("cpu")

    def encode(self, x):
        return x.flatten(1), None

    def reconstruct(self, x):
        return x.clone() if self.recon is None else self.recon(x)

    def to_unit(self, x):
        return x / self.scale

    def sample(self, n, generator=None):
        means = load_data(self.run_config["data"], "test").means
        return means[torch.arange(n) % len(means)].float()


def test_identity_encoder_on_digits_scores_the_raw_pixels_and_preserves_classes():
    tr, te = load_data({"name": "digits"}, "train"), load_data({"name": "digits"}, "test")
    (tx, ty), (x, y) = tr.tensors(), te.tensors()
    out = representation(_Fake("digits"), te)
    assert out["knn_accuracy"] == pytest.approx((_brute_1nn(tx.flatten(1).double(), ty, x.flatten(1).double()) == y)
                                                .double().mean().item(), abs=0)
    assert out["reconstruction_ratio"] == 0.0
    assert out["class_preservation"] == out["class_preservation_ceiling"] > 0.95
    assert out["probe_train"] == len(tx) and out["probe_test"] == len(x) and out["code_dim"] == 64
    blank = representation(_Fake("digits", recon=lambda b: torch.zeros_like(b)), te)
    assert blank["reconstruction_ratio"] == 1.0 and blank["class_preservation"] < 0.3  # one class of ten
    small = representation(_Fake("digits"), te, probe_train=100)
    assert small["probe_train"] == 100
    with pytest.raises(DgmError, match="--split test"):
        representation(_Fake("digits"), tr)


def test_identity_on_a_toy_mixture_lands_on_the_same_mode():
    te = load_data({"name": "grid25"}, "test")
    out = representation(_Fake("grid25"), te, probe_train=2000)
    near = torch.cdist(te.points.double(), te.means).min(1).values
    assert out["same_mode"] == pytest.approx((near < 3 * te.std).double().mean().item(), abs=0)
    assert out["modes"] == out["num_modes"] == 25 and out["high_quality"] == 1.0  # samples at the means
    assert out["knn_accuracy"] > 0.99  # mode labels from the points themselves
    # reconstructions moved to the next mode of the grid: never the same mode
    shifted = representation(_Fake("grid25", recon=lambda b: b + torch.tensor([2.0, 0.0])), te, probe_train=2000)
    assert shifted["same_mode"] == 0.0


def test_eval_cli_prints_the_keys_and_refuses_what_does_not_apply(tmp_path, capsys):
    run = tmp_path / "ali"
    assert main(["train", "ali", "--data", "digits", "--steps", "3", "--batch-size", "16", "--no-progress",
                 "--n-samples", "0", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--metric", "representation", "--probe-train", "200", "--knn-k", "3"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {"knn_accuracy", "logistic_accuracy", "reconstruction_ratio", "class_preservation"} <= set(r)
    assert r["probe_train"] == 200 and "3-NN" in r["protocol"]
    assert main(["eval", str(run), "--metric", "representation", "--split", "train"]) == 2
    err = capsys.readouterr().err
    assert "--split test" in err and err.count("\n") == 1
    gan = tmp_path / "gan"
    assert main(["train", "gan", "--data", "digits", "--steps", "1", "--batch-size", "8", "--no-progress",
                 "--n-samples", "0", "--out", str(gan)]) == 0
    capsys.readouterr()
    assert main(["eval", str(gan), "--metric", "representation"]) == 2
    err = capsys.readouterr().err
    assert "has no encode(x)" in err and err.count("\n") == 1
