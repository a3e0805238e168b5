"""Minibatch discrimination (Salimans et al. 2016) and minibatch standard deviation (Karras et al. 2018): batch-level
features between D's body and its head, for every architecture."""
import numpy as np
import pytest
import torch

from dgm.errors import DgmError
from dgm.models.gan import GAN, GANConfig
from dgm.models.gan_nets.batch_features import MinibatchDiscrimination, MinibatchStdDev

POINTS = dict(data_kind="points", channels=2, height=1, width=1, levels=0)


def test_minibatch_discrimination_equals_its_formula_on_a_hand_made_case():
    """o(x_i)_b = sum_j exp(-||M_i,b - M_j,b||_1), M_i = h_i T, on 3 rows, 2 features, B = 2 kernels of C = 2."""
    layer = MinibatchDiscrimination(2, kernels=2, dim=2)
    with torch.no_grad():
        layer.T.copy_(torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, -1.0]]))
    h = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    # M_i,b by hand: kernel 0 = (h1, h2), kernel 1 = (2 h1, -h2)
    m = [[(0, 0), (0, 0)], [(1, 0), (2, 0)], [(0, 2), (0, -2)]]
    want = [[sum(np.exp(-sum(abs(a - b) for a, b in zip(m[i][k], m[j][k]))) for j in range(3)) for k in range(2)]
            for i in range(3)]
    out = layer(h)
    assert out.shape == (3, 2 + 2)
    assert torch.equal(out[:, :2], h)
    assert torch.allclose(out[:, 2:], torch.tensor(want, dtype=torch.float32), atol=1e-6)
    assert want[0][0] == pytest.approx(1 + np.exp(-1) + np.exp(-2))  # the j = i term is exp(0) = 1


def _np_mbstd(h, g):
    n = h.shape[0]
    y = h.reshape(g, n // g, -1)
    std = np.sqrt(((y - y.mean(0)) ** 2).mean(0) + 1e-8)
    s = std.mean(1)
    return np.concatenate([h, np.tile(s, g)[:, None]], 1)


@pytest.mark.parametrize("n,g,used", [(8, 4, 4), (6, 4, 3), (3, 4, 3), (5, 4, 1)])
def test_minibatch_stddev_equals_a_numpy_reference(n, g, used):
    h = torch.randn(n, 7, dtype=torch.float64)
    out = MinibatchStdDev(g)(h)
    assert out.shape == (n, 8)
    assert np.allclose(out.numpy(), _np_mbstd(h.numpy(), used), atol=1e-12)


def test_the_features_are_functions_of_the_whole_batch():
    """Changing one OTHER sample changes row 0's batch feature (minibatch discrimination: any other row; mbstd: a row
    of row 0's group, i.e. rows 0, N/G, 2N/G, ...), and leaves row 0's own features alone."""
    torch.manual_seed(0)
    h = torch.randn(8, 5)
    h2 = h.clone()
    h2[5] += 1.0
    mbd = MinibatchDiscrimination(5, kernels=3, dim=2)
    a, b = mbd(h), mbd(h2)
    assert torch.equal(a[0, :5], b[0, :5]) and not torch.allclose(a[0, 5:], b[0, 5:])
    std = MinibatchStdDev(4)
    h3 = h.clone()
    h3[2] += 1.0  # same group as row 0 (N/G = 2): rows 0, 2, 4, 6
    assert not torch.allclose(std(h)[0, 5], std(h3)[0, 5])
    assert torch.equal(std(h)[1, 5], std(h3)[1, 5])  # row 1's group (1, 3, 5, 7) is untouched


@pytest.mark.parametrize("arch,data", [("mlp", POINTS), ("veegan", POINTS), ("pacgan", POINTS),
                                       ("dcgan", dict(data_kind="images", channels=1, height=8, width=8, levels=256))])
def test_every_architecture_takes_both_features(arch, data):
    """D(x) = head([features(x), batch features]): the head reads F + B + 1 inputs; the layers' keys are batch.*."""
    c = GANConfig(**data, arch=arch, hidden=8, minibatch_disc=3, minibatch_disc_dim=2, mbstd=True, pack=2)
    d = GAN(c).discriminator
    x = torch.randn(8, *((2,) if data["data_kind"] == "points" else (1, 8, 8)))
    f = d.body.features(x.reshape(4, -1, *x.shape[2:]))
    assert d.representation(x).shape == (4, f.shape[1] + 3 + 1)
    assert d.head.in_features == f.shape[1] + 4 and d(x).shape == (4,)
    assert {k.split(".")[0] for k in d.state_dict()} == {"body", "batch"}
    assert not d.pointwise


def test_batch_features_need_a_scoring_discriminator():
    with pytest.raises(DgmError, match="scoring discriminator"):
        GANConfig(**POINTS, objective="ebgan", mbstd=True)
    with pytest.raises(DgmError, match="--mbstd-group"):
        GANConfig.refuse_unused({"mbstd_group": 2})
