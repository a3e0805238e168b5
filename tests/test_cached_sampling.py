"""Cached sampling (Ramachandran et al. 2017) equals naive sampling given the same uniforms.

For every model with per-layer caches (pixelcnn, gated-pixelcnn, the VQ-VAE prior) and binary, K-level, RGB
(channel order R -> G -> B) and class-conditional data, with odd kernel sizes 3, 5, 7: the cached and the naive
method draw identical images from the same ``noise``, and the logits the caches compute at every element equal the
full forward pass within ``LOGIT_TOL`` times the largest logit (they differ only by the order of float summation).
NADE's, MADE's and LMConv's cached samplers (walks along the order) are held to the same under any order.
"""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from dgm.cli import main
from dgm.models import MODELS
from dgm.models.base import InputError, build_model

#: cached vs naive logits in float32: |difference| <= LOGIT_TOL * max(1, max |logit|) (measured: at most 2e-6 times
#: the largest logit, on these models and on default-size ones with weights scaled up to logits of 10 to 55)
LOGIT_TOL = 1e-5


def _assert_logits_close(got, ref):
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=LOGIT_TOL * max(1.0, ref.abs().max().item()), rtol=0)

# name, data shape and options; each case perturbs the initial weights so that logits are far from uniform
CASES = {
    "pixelcnn-binary": ("pixelcnn", dict(channels=1, height=5, width=6, levels=2, hidden=8, layers=2, first_kernel=7)),
    "pixelcnn-k5": ("pixelcnn", dict(channels=1, height=6, width=5, levels=5, hidden=8, layers=2, kernel=5)),
    "pixelcnn-rgb4": ("pixelcnn", dict(channels=3, height=5, width=6, levels=4, hidden=9, layers=2, first_kernel=5)),
    "pixelcnn-cond-rgb": ("pixelcnn", dict(channels=3, height=5, width=5, levels=3, hidden=6, layers=2,
                                           conditional=True, num_classes=4)),
    "gated-binary": ("gated-pixelcnn", dict(channels=1, height=5, width=6, levels=2, hidden=8, layers=3,
                                            first_kernel=7)),
    "gated-k6": ("gated-pixelcnn", dict(channels=1, height=6, width=5, levels=6, hidden=8, layers=3, kernel=5)),
    "gated-rgb4": ("gated-pixelcnn", dict(channels=3, height=5, width=6, levels=4, hidden=9, layers=3,
                                          first_kernel=3, kernel=5)),
    "gated-cond-rgb": ("gated-pixelcnn", dict(channels=3, height=5, width=5, levels=2, hidden=6, layers=2,
                                              conditional=True, num_classes=3)),
    "gated-cond-k4": ("gated-pixelcnn", dict(channels=1, height=6, width=5, levels=4, hidden=8, layers=2,
                                             conditional=True, num_classes=10, kernel=7)),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _model(name, cfg, seed=0):
    torch.manual_seed(seed)
    model = build_model(name, cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_cached_equals_naive_for_fixed_uniforms(case):
    name, cfg = CASES[case]
    model = _model(name, cfg)
    n = 6
    shape = (n, cfg["channels"], cfg["height"], cfg["width"])
    noise = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    y = torch.arange(n) % cfg["num_classes"] if cfg.get("conditional") else None
    cached = model.sample(n, y=y, noise=noise, method="cached")
    naive = model.sample(n, y=y, noise=noise, method="naive")
    assert torch.equal(cached, naive)
    assert torch.equal(model.sample(n, y=y, noise=noise), cached)                     # cached is the default
    assert len(cached.unique()) == cfg["levels"]            # not a degenerate draw: every level appears
    other = model.sample(n, y=y, noise=noise.flip(0), method="cached")
    assert not torch.equal(other, cached)                    # the draws follow the uniforms
    # the logits the caches computed at every generated element against the naive forward pass on the same image
    ref = model(cached, y)
    _assert_logits_close(model._incremental_logits(cached, y), ref)
    assert ref.abs().max() > 0.5                              # logits far from 0: a dropped term would show
    # completion: the same elements kept, the rest drawn the same way by both methods
    observed = torch.zeros(shape[1:], dtype=torch.bool)
    observed[:, : cfg["height"] // 2] = True
    done = {m: model.complete(naive.flip(0), observed, y=y, noise=noise, method=m) for m in ("cached", "naive")}
    assert torch.equal(done["cached"], done["naive"])
    assert torch.equal(done["cached"][:, :, : cfg["height"] // 2], naive.flip(0)[:, :, : cfg["height"] // 2])


def test_incremental_logits_follow_every_earlier_element_and_channel():
    """The caches really are read: changing one element changes the cached logits of later elements (as in the
    forward pass, G and B of the same pixel included) and of no earlier one."""
    name, cfg = CASES["gated-rgb4"]
    model = _model(name, cfg)
    x = torch.randint(0, 4, (2, 3, 5, 6)).float()
    x2 = x.clone()
    x2[:, 0, 2, 3] = (x2[:, 0, 2, 3] + 1) % 4                   # R at (2, 3)
    a, b = model._incremental_logits(x), model._incremental_logits(x2)
    diff = (a - b).abs().amax(dim=(0, 1))                        # (C, H, W)
    assert diff[1:, 2, 3].min() > 0 and diff[0, 2, 3] == 0       # G and B see R of their pixel, R does not
    assert diff[:, 2, 4].max() > 0 and diff[:, :2].max() == 0 and diff[:, 2, :3].max() == 0


def test_vq_prior_samples_with_the_cached_prior():
    vq = MODELS.get("vq-vae").Config.from_dict(dict(channels=1, height=8, width=8, levels=2, hidden=8,
                                                    codebook_size=6, code_dim=4))
    prior = MODELS.get("vq-vae-prior")(MODELS.get("vq-vae-prior").Config.from_dict(
        dict(channels=1, height=8, width=8, levels=2, hidden=8, layers=3, vq_config=vq.to_dict())))
    with torch.no_grad():
        for p in prior.prior.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(3)) * 0.5)
    assert prior.sample_methods == ("cached", "naive")
    draws = {m: prior.sample(5, generator=torch.Generator().manual_seed(2), method=m) for m in ("cached", "naive")}
    assert torch.equal(draws["cached"], draws["naive"])
    assert torch.equal(prior.sample(5, generator=torch.Generator().manual_seed(2)), draws["cached"])
    codes = prior.sample_codes(5, torch.Generator().manual_seed(2))
    assert len(codes.unique()) > 2
    x = codes[:, None].float()
    _assert_logits_close(prior.prior._incremental_logits(x), prior.prior(x))
    with pytest.raises(InputError, match="unknown sampling method 'fast'"):
        prior.sample(2, method="fast")


def test_methods_are_declared_and_checked():
    indep = build_model("independent", dict(channels=1, height=4, width=4, levels=2))
    assert indep.sample_methods == ("naive",) and indep.sample(2).shape == (2, 1, 4, 4)
    with pytest.raises(InputError, match="IndependentPixels has no 'cached' sampling; choose one of naive"):
        indep.sample(2, method="cached")
    pix = build_model("pixelcnn", dict(channels=1, height=4, width=4, levels=2, hidden=4, layers=1))
    assert pix.sample_methods[0] == "cached"
    with pytest.raises(InputError, match="unknown sampling method 'quick'; choose one of cached, naive"):
        pix.complete(torch.zeros(1, 1, 4, 4), torch.zeros(4, 4, dtype=torch.bool), method="quick")
    assert MODELS.get("gan").sample_methods == () and MODELS.get("vae").sample_methods == ()


def test_dgm_sample_naive_and_default_write_the_same_images(tiny_run, tmp_path, capsys):
    for flag in ([], ["--naive"]):
        tag = "naive" if flag else "cached"
        assert main(["sample", str(tiny_run), "-n", "5", "--seed", "4", "--out", str(tmp_path / f"{tag}.png"),
                     "--save-tensor", str(tmp_path / f"{tag}.pt"), *flag]) == 0
    a, b = (torch.load(tmp_path / f"{t}.pt", weights_only=True) for t in ("cached", "naive"))
    assert torch.equal(a, b) and a.shape == (5, 1, 8, 8) and len(a.unique()) == 2
    assert (tmp_path / "cached.png").read_bytes() == (tmp_path / "naive.png").read_bytes()
    img = tmp_path / "half.png"
    Image.fromarray((a[0, 0].numpy() * 255).astype("uint8")).save(img)
    for flag in ([], ["--naive"]):
        tag = "naive" if flag else "cached"
        assert main(["sample", str(tiny_run), "-n", "3", "--complete-from", str(img), "--out",
                     str(tmp_path / f"c-{tag}.png"), "--save-tensor", str(tmp_path / f"c-{tag}.pt"), *flag]) == 0
    assert torch.equal(*(torch.load(tmp_path / f"c-{t}.pt", weights_only=True) for t in ("cached", "naive")))


def test_naive_flag_on_a_one_pass_model_is_one_line(tmp_path, capsys):
    run = tmp_path / "gan"
    assert main(["train", "gan", "--data", "ring8", "--steps", "1", "--batch-size", "8", "--hidden", "4",
                 "--layers", "1", "--n-samples", "0", "--no-progress", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "2", "--naive", "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dgm: error: --naive is for models that sample element by "
                                                   "element") and "gan draws a sample in one pass" in err
    assert not (tmp_path / "s.png").exists()
    vq = tmp_path / "vq"  # a model that cannot sample: its default figure (reconstructions) draws nothing
    assert main(["train", "vq-vae", "--data", "digits", "--steps", "1", "--batch-size", "8", "--hidden", "8",
                 "--codebook-size", "4", "--code-dim", "2", "--n-samples", "0", "--no-progress", "--out", str(vq)]) == 0
    capsys.readouterr()
    assert main(["sample", str(vq), "-n", "2", "--naive", "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--naive is an option of the audio, complete, samples figures, not of " \
        "reconstructions" in err


ANY_ORDER = {
    "nade-binary": ("nade", dict(levels=2, hidden=16)),
    "nade-k4": ("nade", dict(levels=4, hidden=16)),
    "made-binary": ("made", dict(levels=2, hidden=16, layers=1)),
    "made-k4-2layers": ("made", dict(levels=4, hidden=16, layers=2)),
    "made-k3-3layers": ("made", dict(levels=3, hidden=12, layers=3)),
    "lmconv-binary": ("lmconv", dict(levels=2, hidden=8, layers=3, first_kernel=5)),
    "lmconv-k4-dilated": ("lmconv", dict(levels=4, hidden=6, layers=4, kernel=5, dilation_cycle=3)),
    "lmconv-k3-mixed": ("lmconv", dict(levels=3, hidden=8, layers=2, kernel=3, order_family="mixed")),
}


@pytest.mark.parametrize("case", sorted(ANY_ORDER))
def test_any_order_cached_equals_naive_under_any_order(case):
    """NADE's cache is its running hidden pre-activation; MADE's the hidden units already final (a unit of degree m
    is, once the pixel of rank m is placed) and its first layer's running pre-activation; LMConv's every layer's map,
    computed at one location per step. Walking the order once
    gives the same images as one full pass per pixel, under the raster order, another of the model's orders and a
    permutation passed in; its logits equal the full pass's; completion keeps the observed pixels and draws the rest
    the same way."""
    name, opts = ANY_ORDER[case]
    levels = opts["levels"]
    model = _model(name, dict(channels=1, height=5, width=6, orders=3, **opts))
    assert model.sample_methods == ("cached", "naive")
    n = 7
    noise = torch.rand((n, 1, 5, 6), generator=torch.Generator().manual_seed(1))
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(4))
    for order in (0, 2, perm):
        cached = model.sample(n, noise=noise, order=order, method="cached")
        assert torch.equal(cached, model.sample(n, noise=noise, order=order, method="naive"))
        assert torch.equal(model.sample(n, noise=noise, order=order), cached)      # cached is the default
        assert len(cached.unique()) == levels
        assert not torch.equal(model.sample(n, noise=noise.flip(0), order=order), cached)
        resolved = model.resolve_order(order)
        ref = model._logits(cached, None, resolved)
        _assert_logits_close(model._incremental_logits(cached, resolved), ref)
        assert ref.abs().max() > 0.5
    observed = torch.zeros(5, 6, dtype=torch.bool)
    observed[:2] = True
    start = model.sample(n, noise=noise, order=1).flip(0)
    done = {m: model.complete(start, observed, noise=noise, method=m) for m in ("cached", "naive")}
    assert torch.equal(done["cached"], done["naive"])
    assert torch.equal(done["cached"][:, :, :2], start[:, :, :2])
    assert not torch.equal(done["cached"][:, :, 2:], start[:, :, 2:])


@pytest.mark.parametrize("name", ["nade", "made", "lmconv"])
def test_any_order_cached_logits_follow_earlier_pixels_of_the_order_only(name):
    """The cache is really read and carries only what it should: changing the pixel generated k-th changes the
    cached logits of no earlier pixel of the order (itself included) and of exactly the later pixels whose full-pass
    logits it changes: every later one for NADE and MADE, those within reach of its receptive field for LMConv
    (a 6 x 7 image, so that some later pixels are out of the 3-layer stack's reach)."""
    h, w = (6, 7) if name == "lmconv" else (4, 5)
    extra = dict(layers=3, dilation_cycle=1) if name == "lmconv" else {}
    model = _model(name, dict(channels=1, height=h, width=w, levels=3, hidden=12, orders=2, **extra))
    order = model.resolve_order(1)
    x = torch.randint(0, 3, (2, 1, h, w)).float()
    k = 7
    x2 = x.clone()
    i, j = divmod(int(order[k]), w)
    x2[:, 0, i, j] = (x2[:, 0, i, j] + 1) % 3
    diff = (model._incremental_logits(x, order) - model._incremental_logits(x2, order)).abs().amax(dim=(0, 1, 2))
    full = (model._logits(x, None, order) - model._logits(x2, None, order)).abs().amax(dim=(0, 1, 2))
    rank = torch.empty(h * w, dtype=torch.long)
    rank[order] = torch.arange(h * w)
    changed = diff.flatten() > 0
    assert not changed[rank <= k].any() and changed[rank == k + 1].all()
    assert torch.equal(changed, full.flatten() > 0)
    if name == "lmconv":
        assert not changed[rank > k].all()    # the receptive field is local
    else:
        assert changed[rank > k].all()
