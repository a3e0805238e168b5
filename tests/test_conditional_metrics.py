"""Metrics of class-conditional and truncated samples: CAS, intra-class FID, `dgm eval --truncation`, the
truncation curve, and their one-line refusals."""
import json
import types

import numpy as np
import pytest
import torch

from dgm.cli import main
from dgm.errors import DgmError
from dgm.metrics import evaluate, truncation_curve
from dgm.metrics.cas import cas_from_probs, check_cas
from dgm.metrics.classifiers import accuracy, load_classifier
from dgm.metrics.extractors import extract
from dgm.metrics.features import fid_from_features
from dgm.metrics.images import evaluate_images, real_images, sample_images

N = 40  # 4 samples per digit class


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A class-conditional Gated PixelCNN and an unconditional GAN on digits, two steps each (read-only)."""
    root = tmp_path_factory.mktemp("cond-runs")
    tiny = ["--steps", "2", "--batch-size", "16", "--hidden", "8", "--n-samples", "0", "--no-progress"]
    assert main(["train", "gated-pixelcnn", "--data", "digits", "--conditional", "--layers", "2",
                 "--first-kernel", "3", *tiny, "--out", str(root / "cond")]) == 0
    assert main(["train", "gan", "--data", "digits", *tiny, "--out", str(root / "gan")]) == 0
    return types.SimpleNamespace(cond=root / "cond", gan=root / "gan")


@pytest.fixture(scope="module")
def cond_eval(runs):
    """cas and fid --per-class of the conditional run; the same samples drawn by hand (labels 0..9 cycling, seed 0,
    one batch) from the loaded model."""
    import dgm

    r = evaluate(runs.cond, ["fid", "cas"], n=N, batch_size=N, per_class=True)
    model = dgm.load(runs.cond)
    x = model.to_unit(model.sample(N, y=torch.arange(N) % 10, generator=torch.Generator().manual_seed(0))).float()
    return r, model, x


def test_cas_is_the_classifiers_argmax_against_the_labels_by_hand(cond_eval):
    r, model, x = cond_eval
    y = torch.arange(N) % 10
    with torch.no_grad():
        hit = (load_classifier("digits")(x)[1].argmax(1) == y).double()
    assert r["cas"] == hit.mean().item()
    assert r["cas_per_class"] == {str(k): hit[y == k].mean().item() for k in range(10)}
    assert 0 <= r["cas"] <= 1 and r["labels"]["cas"].startswith("CAS (digits classifier accuracy on 4 samples")
    assert r["provenance"]["n_fake"] == N and r["provenance"]["features"] == "digits"


class _RealImages:
    """A 'conditional model' whose sample(n, y) returns the next unused real test image of each class y asked for."""
    points, conditional, device, truncation_modes = False, True, torch.device("cpu"), ("interpolate",)
    config = types.SimpleNamespace(num_classes=10)
    run_config = {"model": "real-images", "data": {"name": "digits"}}

    def __init__(self):
        self.x, self.y = real_images({"name": "digits"}, "test", labels=True)
        self.used = torch.zeros(len(self.y), dtype=torch.bool)

    def sample(self, n, y=None, generator=None, truncation=None, truncation_mode=None):
        out = []
        for k in y.tolist():
            i = int(torch.nonzero((self.y == k) & ~self.used)[0])
            self.used[i] = True
            out.append(self.x[i])
        return torch.stack(out)

    def to_unit(self, x):
        return x


def test_cas_of_real_test_images_is_the_classifiers_test_accuracy():
    stub = _RealImages()
    reals, labels = stub.x, stub.y
    fakes = sample_images(stub, len(labels), batch_size=100, labels=labels)
    assert torch.equal(fakes, reals)                             # the stub drew the test split, in order
    r = evaluate_images(reals, fakes, ["cas"], dataset="digits", real_labels=labels, fake_labels=labels,
                        use_cache=False)
    want = accuracy(load_classifier("digits"), "digits", "test")
    assert r["cas"] == r["cas_real"] == want and 0.9 < want < 1


def test_intra_fid_of_one_class_is_the_fid_of_that_class(cond_eval):
    r, model, fakes = cond_eval
    reals, labels = real_images(model.run_config["data"], "test", labels=True)
    net = load_classifier("digits")
    fr, ff = extract(net, reals)[0], extract(net, fakes)[0]
    y = (torch.arange(N) % 10).numpy()
    with pytest.warns(UserWarning):  # 4 fakes per class < 128 dimensions
        direct = fid_from_features(fr[labels.numpy() == 3], ff[y == 3])
        everything = fid_from_features(fr, ff)
    assert r["fid_per_class"]["3"] == pytest.approx(direct, rel=1e-9)
    assert r["fid"] == pytest.approx(everything, rel=1e-9)  # --per-class leaves the ordinary FID alone
    assert r["intra_fid"] == pytest.approx(np.mean(list(r["fid_per_class"].values())), rel=1e-12)
    assert sorted(r["fid_per_class"], key=int) == [str(k) for k in range(10)]


def test_cas_from_probs_by_class():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert cas_from_probs(probs, [0, 1, 1, 1]) == (0.75, {0: 1.0, 1: 2 / 3})


def test_truncation_at_psi_1_is_the_ordinary_evaluation(runs):
    plain = evaluate(runs.gan, ["fid", "pr"], n=20, batch_size=20)
    one = evaluate(runs.gan, ["fid", "pr"], n=20, batch_size=20, truncation=1.0)
    half = evaluate(runs.gan, ["fid", "pr"], n=20, batch_size=20, truncation=0.5)
    assert one["truncation"] == 1.0 and one["truncation_mode"] == "interpolate" and "truncation" not in plain
    assert one["provenance"]["truncation"] == 1.0
    assert (one["fid"], one["precision"], one["recall"]) == (plain["fid"], plain["precision"], plain["recall"])
    assert half["fid"] != plain["fid"]


def test_truncation_curve_rows(runs):
    import dgm

    rows = truncation_curve(dgm.load(runs.gan), [0.0, 1.0], ("fid", "cas"), n=20, batch_size=20)
    assert [(r["mode"], r["psi"]) for r in rows] == [(None, None), ("interpolate", 0.0), ("interpolate", 1.0),
                                                     ("resample", 1.0)]  # resample needs PSI > 0
    assert rows[0]["fid"] == rows[2]["fid"] != rows[1]["fid"] and "cas" not in rows[0]  # unconditional: no cas
    stub = _RealImages()  # a conditional model: the curve has a cas column
    rows = truncation_curve(stub, [1.0], ("cas",), n=N, batch_size=N, baseline=False)
    assert rows[0]["cas"] == 1.0 and rows[0]["n_fake"] == N


def _err(capsys, *argv):
    code = main(["eval", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("dgm: error: "), err
    return err


def test_user_errors_are_one_line(runs, capsys, tmp_path):
    gan, cond = str(runs.gan), str(runs.cond)
    assert "train with --conditional" in _err(capsys, gan, "--metric", "cas", "-n", "20")
    assert "train with --conditional" in _err(capsys, gan, "--metric", "fid", "--per-class", "-n", "20")
    assert "--per-class is an option of the fid metric, not of kid: drop --per-class or give --metric fid" in \
        _err(capsys, cond, "--metric", "kid", "--per-class", "-n", "20")
    assert "drop --features" in _err(capsys, cond, "--metric", "cas", "--features", "inception-v3", "-n", "20")
    assert "Gaussian latent" in _err(capsys, cond, "--metric", "fid", "--truncation", "0.5", "-n", "20")
    assert "needs --truncation" in _err(capsys, gan, "--metric", "fid", "--truncation-mode", "resample")
    assert "in [0, 1]" in _err(capsys, gan, "--metric", "fid", "--truncation", "1.5")
    np.savez(tmp_path / "f.npz", images=np.zeros((20, 8, 8), np.uint8))
    fake = ["--real", "digits", "--fake", str(tmp_path / "f.npz")]
    assert "not --fake" in _err(capsys, *fake, "--metric", "cas")
    assert "not --fake" in _err(capsys, *fake, "--metric", "fid", "--per-class")
    assert "--fake images" in _err(capsys, *fake, "--metric", "fid", "--truncation", "0.5")
    with pytest.raises(DgmError, match="shipped for digits, fashion-mnist only; cifar10 has none"):
        check_cas(types.SimpleNamespace(conditional=True), "cifar10")
