"""The two-segment causal transformer of the DALL-E recipe (issue 37): causal across the text/image boundary
(autograd), cached decoding equal to full recomputation, and inverse-CDF draws that follow their uniforms."""
import pytest
import torch

from dgm.nn.transformer import TwoSegmentTransformer, draw, generate


def _model(**kw):
    torch.manual_seed(0)
    m = TwoSegmentTransformer(text_vocab=7, image_vocab=5, text_len=3, image_len=6, dim=16, heads=2, layers=2, **kw)
    return m.eval()


def _tokens(b=2):
    g = torch.Generator().manual_seed(1)
    text = torch.randint(0, 7, (b, 3), generator=g)
    image = torch.randint(7, 12, (b, 6), generator=g)
    return torch.cat([text, image], 1)


def test_output_at_i_depends_only_on_positions_up_to_i_across_the_boundary():
    m = _model()
    h = m.embed(_tokens()).detach().requires_grad_()
    logits = m.body(h)
    for i in range(m.length):
        (g,) = torch.autograd.grad(logits[:, i].sum(), h, retain_graph=True)
        per_position = g.abs().sum((0, 2))
        assert torch.all(per_position[i + 1:] == 0), i  # nothing later than i (the token i + 1 it predicts, ...)
        assert torch.all(per_position[:i + 1] > 0), i  # everything up to i, text and image positions alike


def test_cached_decoding_equals_full_recomputation():
    m = _model()
    tokens = _tokens(3)
    full = m(tokens)
    caches = m.new_cache()
    chunks = [m.step(tokens[:, :2], caches)] + [m.step(tokens[:, i:i + 1], caches) for i in range(2, m.length)]
    torch.testing.assert_close(torch.cat(chunks, 1), full, rtol=1e-5, atol=1e-5)
    u = torch.rand(3, m.length, generator=torch.Generator().manual_seed(5))
    prefix = tokens[:, :3]  # the caption
    for k in (None, 3):
        a = generate(m, prefix, u, top_k=k, cached=True)
        b = generate(m, prefix, u, top_k=k, cached=False)
        assert torch.equal(a, b) and torch.equal(a[:, :3], prefix)
        assert (a[:, 3:] >= 7).all() and (a[:, 3:] < 12).all()  # image positions draw image codes only
    short = generate(m, tokens[:, :1], u)  # text positions after the prefix draw text ids only
    assert (short[:, 1:3] < 7).all() and (short[:, 3:] >= 7).all()


def test_draw_follows_the_inverse_cdf():
    logits = torch.tensor([0.2, 0.5, 0.3]).log().expand(4, 3)
    u = torch.tensor([0.1, 0.25, 0.69, 0.75])
    assert draw(logits, u).tolist() == [0, 1, 1, 2]
    assert draw(logits, u, top_k=1).tolist() == [1, 1, 1, 1]
    # top-2 renormalises 0.5 and 0.3: cumulative 0.625, 1.0
    assert draw(logits, torch.tensor([0.6, 0.63, 0.0, 0.99]), top_k=2).tolist() == [1, 2, 1, 2]
    cold = draw(logits, torch.tensor([0.01, 0.99, 0.5, 0.3]), temperature=1e-3)
    assert cold.tolist() == [1, 1, 1, 1]


def test_too_long_inputs_are_refused():
    m = _model()
    with pytest.raises(ValueError, match="positions"):
        m(torch.zeros(1, m.length + 1, dtype=torch.long))
