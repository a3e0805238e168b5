"""PacGAN's packing (Lin et al. 2018): D scores packs of m samples; pack 1 is no packing, bit for bit."""
import pytest
import torch

from dgm.errors import DgmError
from dgm.models.gan import GAN, GANConfig
from dgm.models.gan_nets.base import pack
from dgm.objectives import gradient_penalty, interpolates

POINTS = dict(data_kind="points", channels=2, height=1, width=1, levels=0)
IMAGES = dict(data_kind="images", channels=1, height=8, width=8, levels=256)


def _gan(seed=0, **kw):
    torch.manual_seed(seed)
    return GAN(GANConfig(**{**POINTS, "hidden": 8, "layers": 2, "latent_dim": 3, **kw}))


@pytest.mark.parametrize("arch", ["mlp", "veegan", "pacgan"])
@pytest.mark.parametrize("m", [2, 3, 4])
def test_a_packed_discriminator_sees_m_samples_per_input(arch, m):
    """Score k depends on samples k m .. k m + m - 1 and on no other: each input is one pack of m samples."""
    d = _gan(arch=arch, pack=m).discriminator.eval()
    x = torch.randn(4 * m, 2)
    jac = torch.autograd.functional.jacobian(d, x)  # (packs, samples, 2)
    assert jac.shape == (4, 4 * m, 2)
    touched = jac.abs().sum(-1) > 0
    expected = torch.zeros(4, 4 * m, dtype=torch.bool)
    for k in range(4):
        expected[k, k * m:(k + 1) * m] = True
    assert torch.equal(touched, expected)
    # the D input is the m samples side by side: the body on the concatenated rows gives the same scores
    cat = torch.cat([x[j::m] for j in range(m)], dim=1)  # pack k = [x_km, x_km+1, ...]
    assert torch.equal(pack(x, m), cat)
    assert torch.allclose(d(x), d.head(d.body.features(cat)).reshape(-1))


def test_images_are_packed_along_channels():
    x = torch.randn(6, 3, 4, 4)
    p = pack(x, 3)
    assert p.shape == (2, 9, 4, 4)
    assert torch.equal(p[1, 3:6], x[4]) and torch.equal(p[0, :3], x[0])
    d = GAN(GANConfig(**{**IMAGES, "hidden": 4, "pack": 2})).discriminator
    assert d.body.body[0].in_channels == 2 and d(torch.randn(6, 1, 8, 8)).shape == (3,)


def test_pack_of_the_samples_of_one_batch_are_independent_draws():
    """The step packs consecutive samples of one batch: real rows come from a shuffled loader and fakes from
    i.i.d. z, so a pack holds m independent samples; m x packs samples are drawn (the batch)."""
    x = torch.arange(12.0).reshape(6, 2)
    assert pack(x, 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(DgmError, match="multiple of 4"):
        pack(torch.zeros(6, 2), 4)


@pytest.mark.parametrize("kw", [dict(POINTS, hidden=8, layers=2), dict(IMAGES, hidden=4)])
def test_pack_1_is_no_packing_bit_for_bit(kw):
    """pack = 1 builds the same parameters (same keys, same values) and the same scores as a D without packing,
    and D(x) is exactly the old body(x) (the state_dict keys of old runs: body.*)."""
    torch.manual_seed(0)
    a = GAN(GANConfig(**kw))
    torch.manual_seed(0)
    b = GAN(GANConfig(**kw, pack=1))
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(k.startswith(("generator.", "discriminator.body.")) for k in sa)
    x = torch.randn(5, *a.data_shape)
    old_forward = (a.discriminator.body[1](a.discriminator.body[0](x)) if kw["data_kind"] == "points"
                   else a.discriminator.body.head(a.discriminator.body.body(x).flatten(1))).reshape(5)
    assert torch.equal(a.discriminator(x), old_forward) and torch.equal(b.discriminator(x), old_forward)


def test_gradient_penalty_is_taken_per_pack():
    """WGAN-GP on a packed critic: ||grad|| of each pack's score w.r.t. its whole packed input; interpolation
    weights t shared by the m samples of a pack, so x_hat lies on the line between a real and a fake pack."""
    d = _gan(pack=2).discriminator
    pts = torch.randn(8, 2)
    gp = gradient_penalty(d, pts)
    y = pack(pts, 2).requires_grad_(True)
    out = d.head(d.body.features(y)).sum()
    (g,) = torch.autograd.grad(out, y)
    assert torch.allclose(gp, ((g.norm(dim=1) - 1) ** 2).mean(), atol=1e-6)
    real, fake = torch.zeros(8, 2), torch.ones(8, 2)
    x_hat = interpolates(real, fake, torch.Generator().manual_seed(0), group=2)
    t = x_hat[:, 0]
    assert torch.equal(t[0::2], t[1::2]) and not torch.equal(t[0::2], t[2::2].roll(1))
    # group 1 draws exactly what it drew before packing existed
    assert torch.equal(interpolates(real, fake, torch.Generator().manual_seed(0)),
                       interpolates(real, fake, torch.Generator().manual_seed(0), group=1))


@pytest.mark.parametrize("objective", ["wgan-gp", "dragan", "hinge", "ebgan"])
def test_every_objective_trains_with_packing(tmp_path, objective):
    """A few updates with pack 2 for objectives with a penalty (WGAN-GP, DRAGAN), a critic and an energy D."""
    from dgm.training import TrainConfig
    from dgm.training.run import train_run

    data = {"name": "ring8", "data_dir": None, "binarize": None, "levels": None, "scale": "levels", "options": {}}
    cfg = TrainConfig(steps=3, batch_size=8, seed=0, progress=False, n_samples=0, ckpt_every=10 ** 9)
    train_run("gan", data, {"objective": objective, "hidden": 8, "layers": 1, "pack": 2}, cfg, out=str(tmp_path / "r"))
    import json

    logs = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all(v == v for r in logs for v in r.values() if isinstance(v, float))  # no NaN
    if objective == "hinge":  # a batch that is not a whole number of packs is refused, whatever the objective
        with pytest.raises(DgmError, match="multiple of 3"):
            train_run("gan", data, {"objective": objective, "hidden": 8, "layers": 1, "pack": 3}, cfg,
                      out=str(tmp_path / "bad"))
