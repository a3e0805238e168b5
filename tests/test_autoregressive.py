"""Defining properties of the raster-order autoregressive models."""
import math

import pytest
import torch

from dgm.models import MODELS, build_model

AR_MODELS = ["pixelcnn", "gated-pixelcnn"]
CASES = [(1, 2), (1, 5), (3, 4)]  # (channels, levels): binary, grey, RGB


def _model(name, c, k, h=5, w=5, **kw):
    torch.manual_seed(0)
    cfg = dict(channels=c, height=h, width=w, levels=k, hidden=12, layers=3, **kw)
    return build_model(name, cfg).double()


def _input_gradient_support(model, x, ch, i, j):
    """|d logits at element (ch, i, j) / d input|, summed over batch and output levels."""
    x = x.clone().requires_grad_(True)
    out = model(x)
    at = out[:, ch, i, j] if model.binary else out[:, :, ch, i, j]
    (g,) = torch.autograd.grad(at.sum(), x)
    return g.abs().sum(0)  # (C, H, W)


@pytest.mark.parametrize("name", AR_MODELS)
@pytest.mark.parametrize("c,k", CASES)
def test_output_depends_only_on_earlier_elements(name, c, k):
    model = _model(name, c, k)
    x = torch.randint(0, k, (2, c, 5, 5)).double()
    order = model.order()
    pos = {e: n for n, e in enumerate(order)}
    for n, (ch, i, j) in enumerate(order):
        g = _input_gradient_support(model, x, ch, i, j)
        later = torch.tensor([[[pos[(cc, ii, jj)] >= n for jj in range(5)] for ii in range(5)] for cc in range(c)])
        assert g[later].abs().max() == 0, f"output {(ch, i, j)} sees a later or current input"
        if n > 0:  # and it does see something earlier (the test can fail the other way too)
            assert g[~later].abs().max() > 0


def test_pixelcnn_has_blind_spot_and_gated_does_not():
    torch.manual_seed(0)
    h = w = 8
    target = (0, 4, 1)  # row 4, column 1
    # upper-right pixels at row 3, columns >= 1 + 4 cannot be reached by 7x7-A then 3x3-B layers
    blind = [(3, 5), (3, 6), (3, 7)]
    x = torch.randint(0, 2, (4, 1, h, w)).double()  # binary levels: the inputs the models take (they refuse others)
    plain = build_model("pixelcnn", dict(channels=1, height=h, width=w, levels=2, hidden=8, layers=8)).double()
    gated = build_model("gated-pixelcnn", dict(channels=1, height=h, width=w, levels=2, hidden=8, layers=8)).double()
    g_plain = _input_gradient_support(plain, x, *target)[0]
    g_gated = _input_gradient_support(gated, x, *target)[0]
    for r, col in blind:
        assert g_plain[r, col] == 0
    earlier = [(r, col) for r in range(h) for col in range(w) if (r, col) < target[1:]]
    missed_plain = [p for p in earlier if g_plain[p] == 0]
    missed_gated = [p for p in earlier if g_gated[p] == 0]
    assert missed_plain, "plain PixelCNN should have a blind spot"
    assert missed_gated == [], f"gated PixelCNN misses {missed_gated}"
    # and the gated model sees every earlier pixel of the last one, too
    g_last = _input_gradient_support(gated, x, 0, h - 1, w - 1)[0]
    assert (g_last.flatten()[:-1] != 0).all()


@pytest.mark.parametrize("name", AR_MODELS + ["independent"])
@pytest.mark.parametrize("c,k", CASES)
def test_log_prob_is_sum_of_one_at_a_time_conditionals(name, c, k):
    model = _model(name, c, k) if name != "independent" else build_model(name, dict(channels=c, height=5, width=5, levels=k)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    x = torch.randint(0, k, (3, c, 5, 5)).double()
    total = torch.zeros(3, dtype=torch.double)
    for (ch, i, j) in model.order():
        # only elements before (ch, i, j) are real; the rest is noise that must not matter
        probe = torch.randint(0, k, x.shape).double()
        order = model.order()
        for (cc, ii, jj) in order[: order.index((ch, i, j)) + 1]:
            probe[:, cc, ii, jj] = x[:, cc, ii, jj]
        out = model(probe)
        if model.binary:
            sign = 2 * x[:, ch, i, j] - 1  # log p(1) = logsigmoid(l), log p(0) = logsigmoid(-l)
            total += torch.nn.functional.logsigmoid(sign * out[:, ch, i, j])
        else:
            logp = torch.log_softmax(out[:, :, ch, i, j], dim=1)
            total += logp.gather(1, x[:, ch, i, j].long()[:, None])[:, 0]
    assert torch.allclose(model.log_prob(x), total, atol=1e-9)


@pytest.mark.parametrize("name", AR_MODELS + ["independent"])
@pytest.mark.parametrize("c,k", CASES)
def test_uniform_model_gives_D_log_K(name, c, k):
    model = build_model(name, dict(channels=c, height=5, width=5, levels=k))
    with torch.no_grad():  # zero output layer -> all logits equal -> uniform conditionals
        last = model.logits if name == "independent" else model.head.out.weight
        last.zero_()
        if name != "independent":
            model.head.out.bias.zero_()
    x = torch.randint(0, k, (4, c, 5, 5)).float()
    assert torch.allclose(-model.log_prob(x), torch.full((4,), c * 25 * math.log(k)), rtol=1e-5)


@pytest.mark.parametrize("name", AR_MODELS)
def test_sampling_is_reproducible_and_in_range(name):
    model = _model(name, 3, 4).float()
    a = model.sample(4, generator=torch.Generator().manual_seed(1))
    b = model.sample(4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (4, 3, 5, 5)
    assert a.min() >= 0 and a.max() <= 3 and torch.equal(a, a.round())


@pytest.mark.parametrize("name", AR_MODELS)
def test_sample_draws_from_the_model_conditionals(name):
    """Every sampled element is the inverse-CDF draw from p(x_i | sampled x_<i) for its uniform."""
    model = _model(name, 1, 3).float()
    noise = torch.rand(6, 1, 5, 5)
    x = model.sample(6, noise=noise)
    logp = torch.log_softmax(model(x), dim=1)  # conditionals of the finished sample
    cdf = logp.exp().cumsum(1)
    lower = torch.where(x.long() > 0, cdf.gather(1, (x.long() - 1).clamp(min=0)[:, None])[:, 0], torch.zeros_like(noise))
    upper = cdf.gather(1, x.long()[:, None])[:, 0]
    assert ((noise >= lower - 1e-6) & (noise < upper + 1e-6)).all()


@pytest.mark.parametrize("name", AR_MODELS)
def test_completion_keeps_observed_and_equals_sampling_of_the_rest(name):
    model = _model(name, 1, 2).float()
    noise = torch.rand(3, 1, 5, 5)
    full = model.sample(3, noise=noise)
    observed = torch.zeros(1, 5, 5, dtype=torch.bool)
    observed[:, :2] = True  # top two rows observed
    # completing from the sample's own top rows with the same noise regenerates the same image
    done = model.complete(full, observed, noise=noise)
    assert torch.equal(done, full)
    other = torch.ones(3, 1, 5, 5)
    done2 = model.complete(other, observed, noise=noise)
    assert torch.equal(done2[:, :, :2], other[:, :, :2])


def test_conditional_model_uses_labels():
    model = _model("gated-pixelcnn", 1, 2, conditional=True, num_classes=3).float()
    x = torch.randint(0, 2, (2, 1, 5, 5)).float()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    a = model.log_prob(x, torch.tensor([0, 0]))
    b = model.log_prob(x, torch.tensor([1, 1]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="class-conditional"):
        model.log_prob(x)


def test_registry_lists_models():
    assert {"pixelcnn", "gated-pixelcnn", "independent"} <= set(MODELS.names())
