"""The captioned datasets of issue 37: seen and unseen item combinations never overlap, every image is what its
caption says (class, quadrant, size, colour), and the generator is deterministic."""
import os

import numpy as np
import pytest
import torch

from dgm.data import load_dataset
from dgm.data.captions import (CLASS_WORDS, COLOURS, POSITIONS, SIZES, TEST_SEEN, combinations,
                               unseen_combinations)
from dgm.errors import DgmError

FASHION = os.path.isdir("/usr/share/datasets/fashion-mnist")


def _items(d, i):
    return [tuple(int(v) for v in row) for row in d.attributes[i] if row[0] >= 0]


def _parse(text, base):
    """The item tuples a caption states (the inverse of dgm.data.captions.caption)."""
    out = []
    for part in text.split(" and "):
        w = part.split()
        assert w[0] == "a"
        size = SIZES.index(w[1])
        colour = COLOURS.index(w[2]) if w[2] in COLOURS else -1
        rest = w[3:] if colour >= 0 else w[2:]
        out.append((CLASS_WORDS[base].index(rest[0]), POSITIONS.index(" ".join(rest[1:])), size, colour))
    return out


@pytest.fixture(scope="module")
def digits():
    return {s: load_dataset("captions-digits", s) for s in ("train", "val", "test")}


def test_held_out_combinations_never_reach_training_and_every_value_stays_seen(digits):
    unseen = digits["train"].unseen_combinations
    assert len(unseen) == 20 and len(combinations(False)) == 80  # 25 % of 10 classes x 4 positions x 2 sizes
    for split in ("train", "val"):
        d = digits[split]
        assert not any(t in unseen for i in range(len(d)) for t in _items(d, i)) and not d.unseen.any()
    seen = {t for i in range(len(digits["train"])) for t in _items(digits["train"], i)}
    assert seen == set(combinations(False)) - unseen  # every seen combination is trained on
    test = digits["test"]
    has = [any(t in unseen for t in _items(test, i)) for i in range(len(test))]
    assert has == test.unseen.tolist() and sum(has) == len(test) - TEST_SEEN
    with pytest.raises(DgmError, match="unseen share"):
        unseen_combinations(False, 1.0)
    assert len(unseen_combinations(True)) == 80 and unseen_combinations(True) == unseen_combinations(True)


def test_every_image_is_what_its_caption_says(digits):
    d = digits["test"]
    x = d.raw.float()
    half = d.image_size // 2
    for i in range(0, len(d), 97):
        items = _items(d, i)
        assert _parse(d.captions[i], "digits") == items and d.labels[i] == items[0][0]
        ink = x[i, 0] > 0
        for c, p, s, _ in items:
            r, col = divmod(p, 2)
            quad = ink[r * half:(r + 1) * half, col * half:(col + 1) * half]
            assert quad.any()
            rows, cols = np.nonzero(quad.numpy())
            extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
            assert extent <= (10 if s == 0 else 16)  # small items are 10 px, large ones fill the 16 px quadrant
        positions = {p for _, p, _, _ in items}
        for p in set(range(4)) - positions:  # empty quadrants are black
            r, col = divmod(p, 2)
            assert not ink[r * half:(r + 1) * half, col * half:(col + 1) * half].any()


def test_the_generator_is_deterministic_and_splits_differ(digits):
    again = load_dataset("captions-digits", "test")
    assert torch.equal(again.raw, digits["test"].raw) and again.captions == digits["test"].captions
    assert digits["val"].captions[:50] != digits["test"].captions[:50]
    big = load_dataset("captions-digits", "val", image_size=48)
    assert big.raw.shape[1:] == (1, 48, 48) and big.captions == digits["val"].captions


def test_colour_variant_paints_each_item_its_colour():
    d = load_dataset("captions-digits-colour", "val")
    assert d.raw.shape[1] == 3 and d.spec.channels == 3
    half = 16
    for i in range(0, 300, 7):
        for c, p, s, k in _items(d, i):
            r, col = divmod(p, 2)
            patch = d.raw[i, :, r * half:(r + 1) * half, col * half:(col + 1) * half].float().sum((1, 2))
            assert _parse(d.captions[i], "digits") == _items(d, i)
            if COLOURS[k] == "white":
                assert patch.max() - patch.min() < 1e-6 * patch.max() + 1
            else:
                assert patch.argmax() == "rgb".index(COLOURS[k][0] if k < 3 else "r")


def test_bad_options_are_one_line_errors():
    with pytest.raises(DgmError, match="--image-size must be 32"):
        load_dataset("captions-digits", "val", image_size=40)
    with pytest.raises(DgmError, match="reads no files"):
        load_dataset("captions-digits", "val", data_dir="/tmp")


@pytest.mark.skipif(not FASHION, reason="needs dataset-fashion-mnist")
def test_fashion_items_come_from_the_same_split_and_read_back():
    d = load_dataset("captions-fashion", "val")
    assert len(d) == 2000 and d.raw.shape[1:] == (1, 32, 32)
    for i in range(0, len(d), 101):
        assert _parse(d.captions[i], "fashion") == _items(d, i)
