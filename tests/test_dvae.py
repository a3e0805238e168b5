"""The discrete VAE of DALL-E (issue 37): the Gumbel-softmax draw has the categorical's expectation, the schedules
and the KL to the uniform prior equal their formulas, the straight-through path passes the relaxed gradient, and a
collapsed codebook is visible in --metric recon."""
import json
import math

import pytest
import torch

from dgm.cli import main
from dgm.metrics.recon import recon_from_batches
from dgm.models import build_model
from dgm.models.dvae import cosine_temperature, gumbel_softmax, kl_to_uniform, linear_warmup


def test_gumbel_argmax_is_a_draw_of_the_categorical():
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5])
    n = 40_000
    u = torch.rand(n, 5, generator=torch.Generator().manual_seed(0))
    hard = gumbel_softmax(logits.expand(n, 5), tau=1.0, hard=True, uniform=u)
    freq, p = hard.mean(0), logits.softmax(0)
    assert torch.all((freq - p).abs() < 4 * torch.sqrt(p * (1 - p) / n))  # within 4 standard errors per class
    assert torch.equal(hard.sum(1), torch.ones(n))
    # at a low temperature the relaxed draw is (nearly) that one-hot; at a high one it flattens toward uniform
    cold = gumbel_softmax(logits.expand(n, 5), tau=0.01, uniform=u)
    assert (cold.argmax(1) == hard.argmax(1)).all() and (cold.max(1).values > 0.9).double().mean() > 0.95
    hot = gumbel_softmax(logits.expand(n, 5), tau=100.0, uniform=u)
    assert (hot - 0.2).abs().max() < 0.05


def test_straight_through_forward_is_one_hot_and_gradient_is_the_relaxed_one():
    logits = torch.randn(3, 6, 2, 2, generator=torch.Generator().manual_seed(1))
    u = torch.rand(3, 6, 2, 2, generator=torch.Generator().manual_seed(2))
    w = torch.randn(3, 6, 2, 2, generator=torch.Generator().manual_seed(3))
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    hard = gumbel_softmax(a, 0.5, hard=True, uniform=u)
    soft = gumbel_softmax(b, 0.5, hard=False, uniform=u)
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0} and torch.equal(hard.detach().sum(1), torch.ones(3, 2, 2))
    (hard * w).sum().backward()
    (soft * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_schedules_equal_their_formulas():
    assert cosine_temperature(0, 1.0, 1 / 16, 100) == 1.0
    assert cosine_temperature(100, 1.0, 1 / 16, 100) == pytest.approx(1 / 16)
    assert cosine_temperature(500, 1.0, 1 / 16, 100) == pytest.approx(1 / 16)
    assert cosine_temperature(50, 1.0, 1 / 16, 100) == pytest.approx((1 + 1 / 16) / 2)
    t = 30
    assert cosine_temperature(t, 1.0, 0.1, 100) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.3)) / 2)
    assert linear_warmup(0, 6.6, 5000) == 0.0 and linear_warmup(2500, 6.6, 5000) == pytest.approx(3.3)
    assert linear_warmup(9000, 6.6, 5000) == 6.6 and linear_warmup(0, 6.6, 0) == 6.6


def test_kl_to_the_uniform_prior_equals_a_hand_computation():
    q = torch.tensor([0.4, 0.3, 0.2, 0.1])
    logits = q.log().reshape(1, 4, 1, 1).repeat(2, 1, 1, 3)  # 2 examples, 3 cells each
    want = 3 * (sum(p * math.log(p) for p in q.tolist()) + math.log(4))
    torch.testing.assert_close(kl_to_uniform(logits), torch.full((2,), want), rtol=1e-6, atol=1e-6)
    assert torch.allclose(kl_to_uniform(torch.zeros(1, 4, 2, 2)), torch.zeros(1), atol=1e-7)  # uniform q
    assert kl_to_uniform(torch.tensor([[[[50.0]], [[0.0]], [[0.0]], [[0.0]]]])).item() == pytest.approx(math.log(4))


def _model(**kw):
    torch.manual_seed(0)
    return build_model("dvae", dict(channels=1, height=8, width=8, levels=2, codes=8, code_dim=4, hidden=8, **kw))


def test_a_collapsed_codebook_shows_in_the_recon_metric():
    m = _model()
    x = (torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    healthy = recon_from_batches(m, [(x, None)])
    last = m.encoder[-1]
    with torch.no_grad():  # every cell's logits favour code 5 whatever x is
        last.weight.zero_()
        last.bias.copy_(torch.arange(8.0) == 5)
    collapsed = recon_from_batches(m, [(x, None)])
    assert collapsed["codes_used"] == 1 and collapsed["perplexity"] == pytest.approx(1.0)
    assert healthy["codes_used"] > 1 and healthy["codes"] == 8


def test_training_logs_the_schedules_and_refuses_bad_options(tmp_path, capsys):
    run = tmp_path / "dvae"
    assert main(["train", "dvae", "--data", "digits", "--binarize", "--steps", "4", "--batch-size", "8",
                 "--codes", "8", "--code-dim", "4", "--hidden", "8", "--kl-warmup", "4", "--temp-steps", "2",
                 "--no-progress", "--n-samples", "0", "--log-every", "1", "--out", str(run)]) == 0
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    for r in train:  # the step logged is after its update: the schedules were read at step - 1
        s = r["step"] - 1
        assert r["kl_weight"] == pytest.approx(linear_warmup(s, 6.6, 4))
        assert r["temperature"] == pytest.approx(cosine_temperature(s, 1.0, 1 / 16, 2))
    capsys.readouterr()
    assert main(["eval", str(run), "--metric", "recon"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {"rec_nats", "codes_used", "perplexity", "codes"} <= set(r) and r["codes"] == 8
    for argv, msg in ((["--data", "ring8"], "needs image data"), (["--temp-start", "0"], "--temp-start"),
                      (["--codes", "1"], "--codes must be >= 2")):
        code = main(["train", "dvae", *argv, "--steps", "1", "--out", str(tmp_path / "bad"), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and msg in err and err.count("\n") == 1, err
