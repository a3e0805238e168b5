"""GAN objectives and regularisers equal their formulas (seed 002's loss table, seeds 000/001/004)."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from dgm.objectives import (F_DIVERGENCES, OBJECTIVES, began_update, clip_weights, gradient_penalty,
                            instance_noise_std, interpolates, perturbed, pulling_away)
from dgm.objectives import gan as G

R = torch.tensor([2.0, -1.0, 0.3], dtype=torch.float64)   # D's outputs on reals
Fk = torch.tensor([0.5, -3.0, 1.2], dtype=torch.float64)  # D's outputs on fakes


def _sig(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, dtype=np.float64)))


def _mean(a):
    return float(np.mean(a))


def test_minimax_and_non_saturating_match_the_log_formulas():
    Dr, Df = _sig(R), _sig(Fk)
    loss_d, loss_g = OBJECTIVES.get("minimax").losses(R, Fk)
    assert float(loss_d) == pytest.approx(-(_mean(np.log(Dr)) + _mean(np.log(1 - Df))), rel=1e-12)
    assert float(loss_g) == pytest.approx(_mean(np.log(1 - Df)), rel=1e-12)  # G minimises E log(1 - D(G(z)))
    _, ns = OBJECTIVES.get("non-saturating").losses(R, Fk)
    assert float(ns) == pytest.approx(-_mean(np.log(Df)), rel=1e-12)  # G maximises E log D(G(z))


def test_label_smoothing_uses_alpha_and_beta_targets():
    a, b = 0.9, 0.1
    Dr, Df = _sig(R), _sig(Fk)
    want = (-_mean(a * np.log(Dr) + (1 - a) * np.log(1 - Dr))
            - _mean(b * np.log(Df) + (1 - b) * np.log(1 - Df)))
    loss_d, _ = OBJECTIVES.get("label-smoothing").losses(R, Fk, alpha=a, beta=b)
    assert float(loss_d) == pytest.approx(want, rel=1e-12)


def test_label_smoothing_optimum_is_alpha_p_plus_beta_q_over_p_plus_q():
    """The pointwise loss p*BCE(d, alpha) + q*BCE(d, beta) is stationary (and convex) at
    D* = (alpha p + beta q) / (p + q) (seed 000)."""
    p, q, a, b = 0.7, 0.2, 0.9, 0.1
    d_star = (a * p + b * q) / (p + q)

    def loss(logit):
        x = torch.full((1,), logit, dtype=torch.float64, requires_grad=True)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        val = p * bce(x, torch.full_like(x, a)) + q * bce(x, torch.full_like(x, b))
        (g,) = torch.autograd.grad(val, x)
        return val.item(), g.item()

    star = math.log(d_star / (1 - d_star))
    assert abs(loss(star)[1]) < 1e-12
    assert loss(star - 0.1)[0] > loss(star)[0] < loss(star + 0.1)[0]
    # the library's loss with a real and a fake at the same point (p = q) is stationary at (alpha + beta) / 2
    half = (a + b) / 2
    x = torch.full((1,), math.log(half / (1 - half)), dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(G.label_smoothing_d(x, x, a, b), x)
    assert abs(float(g)) < 1e-12


def test_lsgan_wgan_hinge_values():
    r, f = R.numpy(), Fk.numpy()
    d, g = OBJECTIVES.get("lsgan").losses(R, Fk)
    assert float(d) == pytest.approx(_mean((r - 1) ** 2) + _mean(f ** 2))
    assert float(g) == pytest.approx(_mean((f - 1) ** 2))
    for name in ("wgan", "wgan-gp"):
        d, g = OBJECTIVES.get(name).losses(R, Fk)
        assert float(d) == pytest.approx(_mean(f) - _mean(r))  # critic maximises E f(x) - E f(G(z))
        assert float(g) == pytest.approx(-_mean(f))
    d, g = OBJECTIVES.get("hinge").losses(R, Fk)
    assert float(d) == pytest.approx(_mean(np.maximum(0, 1 - r)) + _mean(np.maximum(0, 1 + f)))
    assert float(g) == pytest.approx(-_mean(f))
    # DRAGAN's losses are the GAN's (its penalty is separate)
    d, g = OBJECTIVES.get("dragan").losses(R, Fk)
    assert float(d) == pytest.approx(float(OBJECTIVES.get("minimax").d(R, Fk)))


def test_ebgan_margin_and_pulling_away_term():
    e_real = torch.tensor([0.2, 0.5])
    e_fake = torch.tensor([0.3, 2.0])
    d, g = OBJECTIVES.get("ebgan").losses(e_real, e_fake, margin=1.0)
    assert float(d) == pytest.approx(0.35 + (0.7 + 0.0) / 2)
    assert float(g) == pytest.approx(1.15)
    # PT: orthogonal rows -> 0; parallel rows -> 1; a hand example
    assert float(pulling_away(torch.eye(4))) == pytest.approx(0.0, abs=1e-7)
    assert float(pulling_away(torch.tensor([[1.0, 2.0], [2.0, 4.0], [-3.0, -6.0]]))) == pytest.approx(1.0, abs=1e-6)
    h = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    cos2 = [0.5, 0.0, 0.5]  # pairs (0,1), (0,2), (1,2)
    assert float(pulling_away(h)) == pytest.approx(2 / (3 * 2) * sum(cos2), abs=1e-6)


def test_began_losses_and_k_control():
    l_real, l_fake = torch.tensor([0.4, 0.4]), torch.tensor([0.1, 0.1])
    assert float(G.began_d(l_real, l_fake, k=0.5)) == pytest.approx(0.4 - 0.5 * 0.1)
    assert float(G.began_g(l_fake)) == pytest.approx(0.1)
    k, m = began_update(0.5, 0.4, 0.1, gamma=0.5, lambda_k=0.01)
    assert k == pytest.approx(0.5 + 0.01 * (0.5 * 0.4 - 0.1))
    assert m == pytest.approx(0.4 + abs(0.5 * 0.4 - 0.1))
    assert began_update(0.0, 0.0, 5.0)[0] == 0.0 and began_update(1.0, 10.0, 0.0, lambda_k=1.0)[0] == 1.0


@pytest.mark.parametrize("name", sorted(F_DIVERGENCES))
def test_f_gan_conjugates_satisfy_fenchel_identity(name):
    """f*(f'(u)) = u f'(u) - f(u), with f' from autograd (seed 004's conjugate)."""
    d = F_DIVERGENCES[name]
    u = torch.linspace(0.1, 5.0, 50, dtype=torch.float64, requires_grad=True)
    fu = d.f(u)
    (fp,) = torch.autograd.grad(fu.sum(), u)
    lhs = d.conjugate(fp)
    rhs = u.detach() * fp - fu.detach()
    assert torch.allclose(lhs, rhs, rtol=1e-9, atol=1e-10)
    # Fenchel-Young: f*(t) >= u t - f(u) for all u (sup over u), checked on a grid of t in the activation's range
    v = torch.linspace(-2, 2, 9, dtype=torch.float64)
    t = d.activation(v)
    grid = torch.linspace(0.02, 20, 4000, dtype=torch.float64)
    sup = (grid[None] * t[:, None] - d.f(grid)[None]).max(1).values
    assert torch.all(d.conjugate(t) >= sup - 1e-6)
    # the stable closed form equals the conjugate of the activation
    assert torch.allclose(d.conj_act(v), d.conjugate(t), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", sorted(F_DIVERGENCES))
def test_f_gan_losses_equal_the_variational_bound(name):
    d = F_DIVERGENCES[name]
    loss_d, loss_g = OBJECTIVES.get("f-gan").losses(R, Fk, divergence=name)
    bound = d.activation(R).mean() - d.conjugate(d.activation(Fk)).mean()
    assert float(loss_d) == pytest.approx(-float(bound), rel=1e-10)
    assert float(loss_g) == pytest.approx(-float(d.activation(Fk).mean()), rel=1e-10)


def test_f_gan_bound_at_the_optimal_critic_equals_the_divergence():
    """With T*(x) = f'(p(x)/q(x)) the bound is tight: E_p T* - E_q f*(T*) = D_f(p||q) (two discrete laws)."""
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    q = torch.tensor([0.2, 0.2, 0.6], dtype=torch.float64)
    for name, d in F_DIVERGENCES.items():
        u = (p / q).requires_grad_(True)
        (t_star,) = torch.autograd.grad(d.f(u).sum(), u)
        bound = (p * t_star).sum() - (q * d.conjugate(t_star)).sum()
        exact = (q * d.f(p / q)).sum()
        assert float(bound) == pytest.approx(float(exact), rel=1e-9), name


def _critic():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1)).double()


def test_gradient_penalty_equals_finite_differences():
    f = _critic()
    x = torch.randn(5, 3, dtype=torch.float64)
    gp = gradient_penalty(lambda v: f(v).squeeze(1), x)
    h = 1e-6
    norms = []
    for i in range(5):
        g = []
        for j in range(3):
            e = torch.zeros(3, dtype=torch.float64)
            e[j] = h
            g.append((f(x[i] + e) - f(x[i] - e)).item() / (2 * h))
        norms.append(np.linalg.norm(g))
    want = np.mean((np.array(norms) - 1.0) ** 2)
    assert gp.item() == pytest.approx(want, rel=1e-6)
    # and it is differentiable in the critic's parameters (it trains the critic)
    gp.backward()
    assert f[0].weight.grad is not None and torch.isfinite(f[0].weight.grad).all()
    assert f[2].weight.grad is not None and f[2].weight.grad.abs().sum() > 0


def test_penalty_points_lie_where_the_papers_put_them():
    torch.manual_seed(1)
    real, fake = torch.randn(64, 2), torch.randn(64, 2) + 5
    xi = interpolates(real, fake)
    # on the segment: xi - fake is parallel to real - fake with t in [0, 1]
    t = ((xi - fake) * (real - fake)).sum(1) / ((real - fake) ** 2).sum(1)
    assert torch.allclose(xi, t[:, None] * real + (1 - t[:, None]) * fake, atol=1e-5)
    assert (t >= 0).all() and (t <= 1).all()
    xp = perturbed(real, c=0.5)
    assert ((xp - real).abs() <= 0.5 * real.std() + 1e-6).all()  # within c * std of the data point
    assert not torch.equal(xp, real)


def test_spectral_norm_brings_largest_singular_value_to_one():
    from dgm.nn import apply_spectral_norm

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Conv2d(3, 8, 3))
    with torch.no_grad():
        net[0].weight.mul_(7.0)
    before = torch.linalg.matrix_norm(net[0].weight.detach(), 2).item()
    apply_spectral_norm(net)
    for _ in range(50):  # power iteration runs once per training forward
        net[0](torch.randn(4, 20))
        net[2](torch.randn(1, 3, 5, 5))
    sigma = torch.linalg.matrix_norm(net[0].weight.detach(), 2).item()
    sigma_conv = torch.linalg.matrix_norm(net[2].weight.detach().flatten(1), 2).item()
    assert before > 3
    assert sigma == pytest.approx(1.0, abs=1e-3)
    assert sigma_conv == pytest.approx(1.0, abs=1e-3)


def test_weight_clipping_and_instance_noise_schedule():
    net = nn.Linear(4, 4)
    with torch.no_grad():
        net.weight.mul_(100)
    clip_weights(net, 0.01)
    assert net.weight.abs().max() <= 0.01 and net.bias.abs().max() <= 0.01
    assert instance_noise_std(0, 0.1, 100) == pytest.approx(0.1)
    assert instance_noise_std(50, 0.1, 100) == pytest.approx(0.05)
    assert instance_noise_std(150, 0.1, 100) == 0.0 and instance_noise_std(5, 0.0, 100) == 0.0


def test_every_registered_objective_is_finite_and_differentiable():
    for name in OBJECTIVES.names():
        obj = OBJECTIVES.get(name)
        r = torch.rand(8, requires_grad=True)
        f = torch.rand(8, requires_grad=True)
        opts = {"k": 0.3} if name == "began" else {}
        d = obj.d(r, f, **opts)
        g = obj.g(f)
        (gr,) = torch.autograd.grad(d, r)
        assert torch.isfinite(d) and torch.isfinite(g) and torch.isfinite(gr).all(), name
