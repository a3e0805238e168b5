"""The semi-supervised GAN (Salimans et al. 2016): its losses against the (K+1)-class softmax written out by hand,
the labelled subset, the accuracy metric, resume and the user errors."""
import json

import pytest
import torch

import dgm
from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.errors import DgmError
from dgm.metrics import evaluate
from dgm.models import MODELS
from dgm.models.ssgan import labelled_subset
from dgm.objectives import semisupervised as ss
from dgm.runs import load_data

TRAIN = ["--data", "digits", "--batch-size", "16", "--hidden", "8", "--labels-per-class", "3", "--no-progress",
         "--n-samples", "0", "--ckpt-every", "1000", "--eval-every", "1000", "--log-every", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _k_plus_1(logits):
    """The paper's K+1 class probabilities, the fake class's logit fixed at 0, by an explicit softmax."""
    full = torch.cat([logits, torch.zeros(len(logits), 1)], 1)
    return full.exp() / full.exp().sum(1, keepdim=True)


LOGITS = torch.tensor([[2.0, -1.0, 0.5], [-3.0, -2.0, -4.0], [0.1, 3.0, 1.0]], dtype=torch.float64)


def test_real_probability_is_one_minus_the_fake_class_probability():
    p = _k_plus_1(LOGITS)
    assert torch.allclose(ss.real_probability(LOGITS), 1 - p[:, -1], atol=1e-12)
    z = LOGITS.exp().sum(1)
    assert torch.allclose(ss.real_probability(LOGITS), z / (z + 1), atol=1e-12)


def test_class_losses_equal_their_formulas_on_known_logits():
    p = _k_plus_1(LOGITS)
    y = torch.tensor([0, 2, 1])
    # supervised: -log p(y | x, y < K+1) = -log p_y / (1 - p_{K+1})
    sup = -(p[torch.arange(3), y] / (1 - p[:, -1])).log().mean()
    assert ss.supervised_loss(LOGITS, y).item() == pytest.approx(sup.item(), rel=1e-12)
    # unsupervised: -log D(real) - log(1 - D(fake)) = -log(1 - p_{K+1}(real)) - log p_{K+1}(fake)
    real, fake = LOGITS[:2], LOGITS[1:]
    unsup = -(1 - _k_plus_1(real)[:, -1]).log().mean() - _k_plus_1(fake)[:, -1].log().mean()
    assert ss.unsupervised_loss(real, fake).item() == pytest.approx(unsup.item(), rel=1e-12)
    # G, non-saturating: -log D(G(z)); feature matching: squared distance of the mean features
    assert ss.generator_loss(fake).item() == pytest.approx(-(1 - _k_plus_1(fake)[:, -1]).log().mean().item(),
                                                           rel=1e-12)
    f, g = torch.tensor([[1.0, 2.0], [3.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert ss.feature_matching(f, g).item() == pytest.approx((2 - 0) ** 2 + (1 - 0.5) ** 2)


def test_labelled_subset_has_n_per_class_and_depends_only_on_its_seed():
    labels = torch.arange(40) % 4
    a = labelled_subset(labels, 3, 4, seed=5)
    assert torch.equal(a, labelled_subset(labels, 3, 4, seed=5)) and not torch.equal(a, labelled_subset(labels, 3, 4, 6))
    assert torch.equal(torch.bincount(labels[a]), torch.full((4,), 3)) and len(set(a.tolist())) == 12
    with pytest.raises(DgmError, match="class 0 has only 10 training images; use --labels-per-class <= 10"):
        labelled_subset(labels, 11, 4, 0)


def test_the_head_has_k_logits_and_the_classifier_reads_ds_body():
    cls = MODELS.get("ssgan")
    for arch in ("mlp", "dcgan"):
        m = cls(cls.Config.from_dict(dict(channels=1, height=8, width=8, levels=17, num_classes=4, hidden=8,
                                          arch=arch))).eval()
        x = torch.rand(5, 1, 8, 8) * 2 - 1
        logits = m.classify(x)
        assert logits.shape == (5, 4)
        assert torch.equal(logits, m.discriminator.head(m.discriminator.representation(x)))
        assert m.labelled_index.shape == (40,)


def test_resume_is_bit_for_bit_keeps_the_subset_and_accuracy_is_the_direct_computation(tmp_path, capsys):
    full, half = tmp_path / "full", tmp_path / "half"
    args = ["train", "ssgan", *TRAIN, "--feature-matching"]  # non-saturating G: resumed in test_contract
    assert main([*args, "--steps", "4", "--out", str(full)]) == 0
    assert main([*args, "--steps", "2", "--out", str(half)]) == 0
    assert main([*args, "--steps", "4", "--out", str(half), "--resume"]) == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(r)) for r in (full, half))
    assert a["model"].keys() == b["model"].keys() and "labelled_index" in a["model"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["family_state"] == b["family_state"]
    model = dgm.load(full)
    train = load_data(model.run_config["data"], "train")
    subset = model.labelled_index
    assert torch.equal(subset, labelled_subset(train.labels, 3, 10, 0))  # the run's subset, kept in its checkpoint
    capsys.readouterr()
    result = evaluate(str(full), ["accuracy"])
    x, y = load_data(model.run_config["data"], "test").tensors()
    with torch.no_grad():
        direct = int((model.discriminator.head(model.discriminator.representation(x)).argmax(1) == y).sum()) / len(y)
    assert result["accuracy"] == direct and result["accuracy_n"] == len(y) == 360
    assert result["provenance"]["step"] == 4
    assert main(["eval", str(full), "--metric", "accuracy"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == result["accuracy"]


def test_accuracy_refuses_a_model_without_a_classifier(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--metric", "accuracy"]) == 2
    err = capsys.readouterr().err
    assert "the accuracy metric needs a model with a classifier (ssgan)" in err and err.count("\n") == 1


@pytest.mark.parametrize("flags,match", [
    (["--data", "digits", "--labels-per-class", "500"], "--labels-per-class 500: class"),
    (["--data", "digits", "--labels-per-class", "0"], "--labels-per-class must be >= 1"),
    (["--data", "digits", "--objective", "hinge"], "--objective hinge does not apply"),
    (["--data", "digits", "--pack", "2", "--batch-size", "32"], "--pack 2: ssgan needs one D output per sample"),
    (["--data", "ring8"], "model ssgan needs image data"),
])
def test_user_errors_are_one_line(flags, match, tmp_path, capsys):
    assert main(["train", "ssgan", "--steps", "1", "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r" / "config.json").exists()


def test_unlabelled_data_is_refused():
    cls = MODELS.get("ssgan")
    with pytest.raises(DgmError, match="ssgan needs a labelled dataset"):
        cls.Config.from_dict(dict(channels=1, height=8, width=8, levels=17, num_classes=0))
