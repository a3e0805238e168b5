"""The shipped feature classifiers load offline, classify well, are deterministic, and retrain bit-for-bit."""
import hashlib
import os

import pytest
import torch

from dgm.errors import DgmError
from dgm.metrics.classifiers import CLASSIFIERS, WEIGHTS_DIR, accuracy, load_classifier, train_classifier

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_shipped_classifier_loads_with_declared_shapes_and_hash(name):
    path = WEIGHTS_DIR / f"{name}.pt"
    assert path.stat().st_size < 1_000_000
    model = load_classifier(name)
    assert not model.training and model.name == name and model.num_classes == 10
    assert model.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    x = torch.rand(5, model.channels, model.size, model.size)
    with torch.no_grad():
        feats, logits = model(x)
        again = model(x.clone())
    assert feats.shape == (5, model.dim) and logits.shape == (5, model.num_classes)
    assert torch.equal(feats, again[0]) and torch.equal(logits, again[1])


def test_digits_classifier_accuracy_on_full_test_split():
    assert accuracy(load_classifier("digits"), "digits", "test") >= 0.95


def test_fashion_classifier_accuracy_on_first_2000_test_images():
    if not os.path.isdir(FASHION_DIR):
        pytest.skip(f"{FASHION_DIR} missing (apt-get install -y dataset-fashion-mnist)")
    assert accuracy(load_classifier("fashion-mnist"), "fashion-mnist", "test", limit=2000) >= 0.88


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 1, 28, 28), (1, 8, 8)])
def test_wrong_input_shape_is_a_one_line_error(shape):
    model = load_classifier("digits")
    with pytest.raises(DgmError) as e:
        model(torch.zeros(shape))
    msg = str(e.value)
    assert "\n" not in msg and "(N, 1, 8, 8)" in msg and "--features inception-v3" in msg


def test_unknown_classifier_suggests_nearest_name():
    with pytest.raises(DgmError, match="did you mean 'digits'"):
        load_classifier("digit")


def test_training_is_bit_for_bit_repeatable_with_a_seed():
    a, info = train_classifier("digits", steps=20, seed=3, progress=False)
    b, _ = train_classifier("digits", steps=20, seed=3, progress=False)
    c, _ = train_classifier("digits", steps=20, seed=4, progress=False)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert info["steps"] == 20 and info["params"] == sum(p.numel() for p in a.parameters())
