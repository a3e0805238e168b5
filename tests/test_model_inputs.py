"""Every model refuses inputs it cannot score (issue 12, item 2) and scores every input it can.

Property tests over every registered model (``MODELS.names()``), built from its ``Config.tiny()`` options for a
binary and a 4-level RGB image shape, by its declared capabilities: ``log_prob`` (and ``forward``, ``complete``,
``elbo_terms``, ``reconstruct``, ``codes``, ``terms``) raise a ValueError naming the expected range for any batch
holding a value that is not an integer level 0..K-1 (raw bytes, level K, negative, fractions, NaN, infinities), for
labels given to an unconditional model and for missing, out-of-range or misshapen labels of a conditional one; and
``log_prob`` of any valid batch is finite and <= 0 (log-probabilities of discrete data).
"""
import dataclasses
import functools
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from dgm.errors import DgmError
from dgm.models import MODELS, InputError

SHAPES = {"binary": (1, 8, 8, 2), "rgb4": (3, 8, 8, 4), "grey4": (1, 8, 8, 4)}
CLASSES = 3
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _data(shape):
    c, h, w, k = shape
    return {"channels": c, "height": h, "width": w, "levels": k, "num_classes": CLASSES}


@functools.lru_cache(maxsize=None)
def build(name, shape_id, conditional=False):
    """Model ``name`` with its tiny options for one data shape (a model fitted to another run's model, such as a
    prior over a VQ-VAE's codes, gets an untrained source model built the same way)."""
    cls, shape = MODELS.get(name), SHAPES[shape_id]
    d = {**_data(shape), **cls.Config.tiny(), **({"conditional": True} if conditional else {})}
    if cls.source_run is not None:
        src = MODELS.get(cls.source_run)
        d.update(cls.source_options("source", {"model_config": src.Config.from_dict(
            {**_data(shape), **src.Config.tiny()}).to_dict()}))
    torch.manual_seed(0)
    return cls(cls.Config.from_dict(d)).eval()


def _images(cls):
    return "images" in cls.data_kinds


def _conditional(cls):
    return "conditional" in {f.name for f in dataclasses.fields(cls.Config)}


def _refuses_colour(name):
    """Models of greyscale images only (made, nade, lmconv) refuse RGB at build time with a one-line error."""
    try:
        build(name, "rgb4")
    except DgmError as e:
        assert "channel" in str(e) and "\n" not in str(e), str(e)
        return True
    return False


def _cases(capability):
    """(model, shape) pairs: binary and 4-level RGB images, or 4-level grey ones for a model of greyscale only."""
    names = [n for n in MODELS.names() if _images(MODELS.get(n)) and capability in MODELS.get(n).capabilities]
    return [pytest.param(n, s, id=f"{n}-{s}") for n in names
            for s in ("binary", "grey4" if _refuses_colour(n) else "rgb4")]


def test_greyscale_only_models_refuse_colour_in_one_line():
    refusing = [n for n in MODELS.names() if _images(MODELS.get(n)) and _refuses_colour(n)]
    assert {"made", "nade", "lmconv"} <= set(refusing)


def _valid(shape, n=2, seed=0):
    c, h, w, k = shape
    return torch.randint(0, k, (n, c, h, w), generator=torch.Generator().manual_seed(seed)).float()


def _entry_points(model):
    """Every public method of the model that takes an image batch x, by its declared capabilities."""
    caps = model.capabilities
    calls = {}
    if "log_prob" in caps:
        calls["log_prob"] = model.log_prob
    if "complete" in caps:
        calls["forward"] = model
        calls["complete"] = lambda x: model.complete(x, torch.zeros(x.shape[1:], dtype=torch.bool),
                                                     generator=torch.Generator().manual_seed(0))
    if "elbo" in caps:
        calls["elbo_terms"] = model.elbo_terms
    if "latent" in caps or "codes" in caps:
        calls["reconstruct"] = model.reconstruct
    if "codes" in caps:
        calls["codes"], calls["terms"] = model.codes, model.terms
    return calls


def _bad_value(k):
    """One value that is not an integer level 0..k-1: at or above k, negative, a fraction, NaN or an infinity."""
    fraction = st.floats(-2 * k, 2 * k, allow_nan=False, width=32).filter(lambda v: v != math.floor(v))
    return st.one_of(st.integers(k, 10 ** 6), st.integers(-10 ** 6, -1), fraction,
                     st.sampled_from([math.nan, math.inf, -math.inf]))


def _args(model, x):
    """log_prob's labels: (B,) valid labels for a conditional model, else none."""
    return (torch.arange(x.shape[0]) % CLASSES,) if model.conditional else ()


# -- refusals ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,shape_id", _cases("log_prob"))
def test_log_prob_refuses_any_value_outside_the_levels(name, shape_id):
    model, shape = build(name, shape_id), SHAPES[shape_id]

    @SETTINGS
    @given(st.integers(1, 3), st.data())
    def check(n, data):
        x = _valid(shape, n, seed=n)
        i = data.draw(st.integers(0, x.numel() - 1), label="position")
        x.view(-1)[i] = data.draw(_bad_value(shape[3]), label="value")
        with pytest.raises(ValueError, match=f"integer levels 0..{shape[3] - 1}"):
            model.log_prob(x)

    check()


@pytest.mark.parametrize("name,shape_id", _cases("log_prob") + _cases("codes"))
def test_every_entry_point_refuses_bad_images(name, shape_id):
    """Raw 0..255 bytes, level K, negative, fractional, NaN, infinite and misshapen batches, at every entry point;
    the error is a ValueError for library code and a one-line DgmError at the CLI."""
    model, shape = build(name, shape_id), SHAPES[shape_id]
    ok, k = _valid(shape), shape[3]
    bad = {"raw-bytes": ok * 0 + 255, "level-k": ok * 0 + k, "negative": ok - 1, "fraction": ok + 0.5,
           "nan": ok * math.nan, "inf": ok + math.inf, "-inf": ok - math.inf}
    for method, call in _entry_points(model).items():
        for case, x in bad.items():
            with pytest.raises(InputError, match=f"integer levels 0..{k - 1}") as e:
                call(x)
            assert isinstance(e.value, ValueError) and isinstance(e.value, DgmError), (method, case)
            assert "\n" not in str(e.value)
        for x in (torch.zeros(2, shape[0], 9, 9), torch.zeros(shape[:3]), torch.zeros(2, shape[0] + 1, 8, 8)):
            with pytest.raises(ValueError, match="shape"):
                call(x)


@pytest.mark.parametrize("name", [n for n in MODELS.names() if MODELS.get(n).can_sample])
def test_labels_given_to_an_unconditional_model_are_refused(name):
    """sample(y=) of every model that samples, and log_prob(x, y) of every model with log_prob."""
    cls = MODELS.get(name)
    if "audio" in cls.data_kinds:  # (B, 1, T) mu-law levels
        model = cls(cls.Config.from_dict({"data_kind": "audio", "channels": 1, "height": 1, "width": 16, "levels": 256,
                                          **cls.Config.tiny()}))
        assert not model.conditional
        with pytest.raises(ValueError, match="not class-conditional"):
            model.sample(2, y=torch.zeros(2, dtype=torch.long))
        with pytest.raises(ValueError, match="not class-conditional"):
            model.log_prob(torch.zeros(2, 1, 16), torch.zeros(2, dtype=torch.long))
        return
    if not _images(cls):  # a GAN on 2-D points
        model = cls(cls.Config.from_dict({"data_kind": "points", "channels": 2, "height": 1, "width": 1,
                                          "levels": 0, **cls.Config.tiny()}))
    else:
        model = build(name, "binary")
    assert not model.conditional
    with pytest.raises(ValueError, match="not class-conditional"):
        model.sample(2, y=torch.zeros(2, dtype=torch.long))
    if "log_prob" in cls.capabilities:
        with pytest.raises(ValueError, match="not class-conditional"):
            model.log_prob(_valid(SHAPES["binary"]), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("name", [n for n in MODELS.names() if _images(MODELS.get(n)) and _conditional(MODELS.get(n))
                                  and "log_prob" in MODELS.get(n).capabilities])
def test_conditional_models_refuse_bad_labels(name):
    model = build(name, "binary", conditional=True)
    assert model.conditional
    x = _valid(SHAPES["binary"], n=2)
    bad = {"missing": None, "out-of-range": torch.tensor([0, CLASSES]), "negative": torch.tensor([-1, 0]),
           "wrong-shape": torch.zeros(3, dtype=torch.long), "2-d": torch.zeros(2, 1, dtype=torch.long),
           "fractional": torch.tensor([0.5, 1.0]), "a list": [0, 1]}
    for case, y in bad.items():
        for call in (lambda: model.log_prob(x, y), lambda: model(x, y)):
            with pytest.raises(ValueError, match="class"):
                call()
        if y is not None and not isinstance(y, list):  # sampling takes lists and one label for all, too
            with pytest.raises(ValueError, match="class"):
                model.sample(2, y=y)
            with pytest.raises(ValueError, match="class"):
                model.complete(x, torch.ones(x.shape[1:], dtype=torch.bool), y=y)
    # valid labels: one per example, or one label for every draw when sampling
    assert torch.isfinite(model.log_prob(x, torch.tensor([0, CLASSES - 1]))).all()
    assert model.sample(2, y=1, generator=torch.Generator().manual_seed(0)).shape == x.shape


def test_conditional_gan_sampling_refuses_bad_labels():
    """The GAN family has no log_prob: a conditional GAN checks the labels it is asked to sample."""
    model = build("gan", "binary", conditional=True)
    assert model.conditional
    for y in (torch.tensor([0, CLASSES]), torch.tensor([-1, 0]), torch.zeros(3, dtype=torch.long),
              torch.zeros(2, 1, dtype=torch.long), torch.tensor([0.5, 1.0])):
        with pytest.raises(ValueError, match="class"):
            model.sample(2, y=y)
    x = model.sample(2, y=torch.tensor([0, CLASSES - 1]), generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, *model.data_shape)


@pytest.mark.parametrize("name", [n for n in MODELS.names() if "latent_dim" in
                                  {f.name for f in dataclasses.fields(MODELS.get(n).Config)}])
def test_sample_refuses_latent_codes_of_another_size_or_non_finite(name):
    model = build(name, "binary")
    d = model.config.latent_dim
    for z in (torch.zeros(2, d + 1), torch.zeros(d), torch.full((2, d), math.nan), torch.full((2, d), math.inf)):
        with pytest.raises(ValueError, match="z"):
            model.sample(2, z=z)
    assert model.sample(2, z=torch.zeros(2, d)).shape[0] == 2


def test_complete_refuses_a_mask_of_another_shape():
    model = build("gated-pixelcnn", "binary")
    x = _valid(SHAPES["binary"])
    with pytest.raises(ValueError, match="observed"):
        model.complete(x, torch.ones(5, 5, dtype=torch.bool))


# -- acceptance ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,shape_id", _cases("log_prob"))
def test_log_prob_of_every_valid_input_is_finite_and_at_most_zero(name, shape_id):
    """Any batch of integer levels, as float or integer tensors: log p(x) of discrete data is finite and <= 0 (for
    latent-variable models the importance-weighted estimate, here with an untrained, prior-like encoder)."""
    model, shape = build(name, shape_id), SHAPES[shape_id]
    c, h, w, k = shape

    @SETTINGS
    @given(st.lists(st.integers(0, k - 1), min_size=c * h * w, max_size=c * h * w),
           st.sampled_from([torch.float32, torch.float64, torch.int64, torch.uint8]))
    def check(levels, dtype):
        x = torch.tensor(levels, dtype=dtype).reshape(1, c, h, w)
        lp = model.log_prob(x, *_args(model, x))
        assert lp.shape == (1,) and torch.isfinite(lp).all() and (lp <= 0).all(), lp

    check()

