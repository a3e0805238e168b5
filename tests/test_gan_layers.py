"""The layers of the GAN lineage (SAGAN, BigGAN, ProGAN, StyleGAN) equal the seeds' formulas, computed by hand."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dgm.nn import (AdaIN, Downsample, EqualizedConv2d, EqualizedLinear, MappingNetwork, ModulatedConv2d, NoiseInput,
                    PixelNorm, SelfAttention, Upsample, adain, blur, blur_kernel, downsample, fade_in, mix_styles,
                    pixel_norm, truncate, upsample)
from dgm.objectives import orthogonal_regularization, orthogonal_regularization_of


def _mat(conv):
    return conv.weight[:, :, 0, 0].detach()


# -- SAGAN self-attention ---------------------------------------------------------------------------------------


def test_self_attention_equals_the_seed_formula_by_hand():
    torch.manual_seed(0)
    block = SelfAttention(16).double()
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(2, 16, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        y, beta = block(x, return_attention=True)
    n = 9
    for b in range(2):
        xs = x[b].reshape(16, n)                                    # column i is x_i
        f, g, h = _mat(block.f) @ xs, _mat(block.g) @ xs, _mat(block.h) @ xs
        s = [[float(f[:, i] @ g[:, j]) for j in range(n)] for i in range(n)]   # s_ij = f(x_i)^T g(x_j)
        for j in range(n):
            z = sum(math.exp(s[i][j]) for i in range(n))
            a = [math.exp(s[i][j]) / z for i in range(n)]                       # a_ij, normalised over i
            o_j = _mat(block.v) @ sum(a[i] * h[:, i] for i in range(n))         # o_j = v(sum_i a_ij h(x_i))
            assert torch.allclose(y[b].reshape(16, n)[:, j], 0.7 * o_j + xs[:, j])
            assert torch.allclose(beta[b, :, j], torch.tensor(a, dtype=torch.float64))
    assert block.f.out_channels == block.g.out_channels == 2 and block.h.out_channels == 8  # C/8, C/8, C/2


def test_self_attention_starts_as_the_identity_and_keeps_its_map():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 4)
    for spectral in (False, True):
        block = SelfAttention(8, spectral=spectral, keep_attention=True)
        assert block.gamma.item() == 0.0
        assert torch.equal(block(x), x)
        assert block.attention.shape == (2, 16, 16)
        assert torch.allclose(block.attention.sum(dim=1), torch.ones(2, 16))
    assert hasattr(block.f, "parametrizations") and hasattr(block.v, "parametrizations")  # spectral norm on f..v


# -- BigGAN orthogonal regularisation ---------------------------------------------------------------------------


def test_orthogonal_regularization_equals_the_off_diagonal_gram_norm():
    torch.manual_seed(0)
    weight = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    w = weight.reshape(4, -1).t()                                   # one column per output channel
    gram = w.t() @ w
    expected = 1e-4 * ((gram - torch.diag(torch.diag(gram))) ** 2).sum()
    assert torch.allclose(orthogonal_regularization(weight), expected)
    assert orthogonal_regularization(weight, beta=1.0) > 1.0
    q, _ = torch.linalg.qr(torch.randn(12, 4, dtype=torch.float64))     # orthonormal columns
    orthogonal = (q * torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)).t().reshape(4, 3, 2, 2)
    assert orthogonal_regularization(orthogonal, beta=1.0).item() == pytest.approx(0.0, abs=1e-20)


def test_orthogonal_regularization_of_a_module_sums_conv_and_linear_weights_only():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(5, 6), nn.Embedding(10, 5))
    expected = orthogonal_regularization(net[0].weight) + orthogonal_regularization(net[2].weight)
    assert torch.allclose(orthogonal_regularization_of(net), expected)
    nn.utils.parametrizations.spectral_norm(net[2])                 # the raw weight is regularised
    raw = net[2].parametrizations.weight.original
    assert torch.allclose(orthogonal_regularization_of(net), orthogonal_regularization(net[0].weight)
                          + orthogonal_regularization(raw))


# -- ProGAN: equalized learning rate, pixel norm, resampling, fade-in ----------------------------------------------


def test_equalized_layers_scale_by_he_constant_at_run_time():
    torch.manual_seed(0)
    gain = 1.7
    lin = EqualizedLinear(64, 32, gain=gain)
    conv = EqualizedConv2d(8, 16, 3, padding=1, gain=gain)
    for layer, fan_in in ((lin, 64), (conv, 8 * 9)):
        assert abs(layer.weight.std().item() - 1.0) < 0.1 and abs(layer.weight.mean().item()) < 0.1  # ~N(0, 1)
    with torch.no_grad():
        lin.bias.normal_()
        lin.weight.mul_(3.0)                                        # the scale is applied at run time, not baked in
    x = torch.randn(5, 64)
    assert torch.allclose(lin(x), F.linear(x, lin.weight * math.sqrt(gain ** 2 / 64), lin.bias))
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * math.sqrt(gain ** 2 / 72), conv.bias, padding=1))


def test_equalized_lr_multiplier_keeps_the_initial_layer_and_slows_its_updates():
    torch.manual_seed(0)
    slow = EqualizedLinear(256, 256, lr_mul=0.01, bias_init=0.5)
    effective = slow.weight * slow.scale
    assert abs(effective.std().item() - math.sqrt(2 / 256)) < 0.01   # same He init as lr_mul = 1
    x = torch.randn(3, 256)
    assert torch.allclose(slow(x), F.linear(x, effective, torch.full((256,), 0.5)), atol=1e-5)
    assert slow.scale == pytest.approx(math.sqrt(2 / 256) * 0.01)


def test_pixel_norm_formula():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 3)
    expected = x / torch.sqrt((x ** 2).mean(dim=1, keepdim=True) + 1e-8)
    assert torch.allclose(pixel_norm(x), expected)
    assert torch.allclose(PixelNorm()(x).pow(2).mean(dim=1), torch.ones(2, 3, 3), atol=1e-5)
    assert torch.allclose(pixel_norm(torch.randn(4, 7)).pow(2).mean(dim=1), torch.ones(4), atol=1e-5)


def test_blur_filter_and_resampling_shapes():
    k = blur_kernel()
    assert torch.allclose(k, torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16) and k.sum().item() == 1.0
    x = torch.randn(2, 3, 8, 8)
    for mode in ("nearest", "bilinear", "blur"):
        assert upsample(x, mode).shape == Upsample(mode)(x).shape == (2, 3, 16, 16)
        assert downsample(x, mode).shape == Downsample(mode)(x).shape == (2, 3, 4, 4)
    assert torch.equal(upsample(x, "nearest")[..., ::2, ::2], x)
    assert torch.allclose(downsample(x, "bilinear"), F.avg_pool2d(x, 2))
    one = x.clone()
    one[:, 1] = 0
    assert torch.equal(blur(one)[:, 1], torch.zeros(2, 8, 8))     # depthwise: channels do not mix
    flat = blur(torch.ones(1, 1, 6, 6))
    assert torch.allclose(flat[..., 1:-1, 1:-1], torch.ones(1, 1, 4, 4))  # constant inside; zero padding at edges
    with pytest.raises(ValueError, match="bilinear"):
        upsample(x, "bicubic")


def test_fade_in_at_alpha_0_is_the_upsampled_low_resolution_and_at_1_the_new_layer():
    torch.manual_seed(0)
    low, high = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 8, 8)
    low_up = upsample(low, "nearest")
    assert torch.equal(fade_in(low_up, high, 0.0), low_up)
    assert torch.equal(fade_in(low_up, high, 1.0), high)
    assert torch.allclose(fade_in(low_up, high, 0.25), 0.75 * low_up + 0.25 * high)


# -- StyleGAN -----------------------------------------------------------------------------------------------------


def test_adain_equals_its_formula_per_example_and_channel():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4) * 3 + 1
    y_s, y_b = torch.randn(2, 3), torch.randn(2, 3)
    out = adain(x, y_s, y_b)
    for b in range(2):
        for c in range(3):
            mu = x[b, c].mean()
            sigma = torch.sqrt(((x[b, c] - mu) ** 2).mean() + 1e-8)
            assert torch.allclose(out[b, c], y_s[b, c] * (x[b, c] - mu) / sigma + y_b[b, c], atol=1e-5)
    layer = AdaIN(w_dim=6, channels=3)                              # a fresh A gives y_s = 1, y_b = 0 at w = 0
    assert torch.allclose(layer(x, torch.zeros(2, 6)), adain(x, torch.ones(2, 3), torch.zeros(2, 3)))


def test_mix_styles_uses_w1_before_the_crossover_and_w2_after():
    w1, w2 = torch.randn(3, 5), torch.randn(3, 5)
    mixed = mix_styles(w1, w2, 2, n_layers=6)
    assert mixed.shape == (3, 6, 5)
    for layer in range(6):
        assert torch.equal(mixed[:, layer], w1 if layer < 2 else w2)
    per_example = mix_styles(w1, w2, torch.tensor([0, 3, 6]), n_layers=6)
    for b, crossover in enumerate((0, 3, 6)):
        for layer in range(6):
            assert torch.equal(per_example[b, layer], w1[b] if layer < crossover else w2[b])


def test_truncation_in_w_pulls_layers_before_the_cutoff_only():
    torch.manual_seed(0)
    w, w_avg = torch.randn(4, 6, 5), torch.randn(5)
    assert torch.allclose(truncate(w, w_avg, 0.0), w_avg.expand(4, 6, 5))
    assert torch.allclose(truncate(w, w_avg, 1.0), w)
    cut = truncate(w, w_avg, 0.0, cutoff=3)
    assert torch.allclose(cut[:, :3], w_avg.expand(4, 3, 5))
    assert torch.equal(cut[:, 3:], w[:, 3:])
    half = truncate(w, w_avg, 0.5, cutoff=3)
    assert torch.allclose(half[:, :3], w_avg + 0.5 * (w[:, :3] - w_avg))


def test_noise_input_changes_only_the_channels_it_scales():
    torch.manual_seed(0)
    x, noise = torch.randn(2, 4, 5, 5), torch.randn(2, 1, 5, 5)
    layer = NoiseInput(4)
    assert torch.equal(layer(x), x)                                 # scale starts at 0
    with torch.no_grad():
        layer.weight[1], layer.weight[3] = 0.5, -2.0
    out = layer(x, noise)
    assert torch.equal(out[:, [0, 2]], x[:, [0, 2]])
    assert torch.allclose(out[:, 1] - x[:, 1], 0.5 * noise[:, 0])
    assert torch.allclose(out[:, 3] - x[:, 3], -2.0 * noise[:, 0])  # one noise image for all channels
    assert not torch.equal(layer(x), layer(x))                      # fresh noise without an explicit tensor


def test_modulated_conv_demodulates_to_unit_norm_and_equals_a_per_example_conv():
    torch.manual_seed(0)
    conv = ModulatedConv2d(16, 8, 3, w_dim=6)
    x, w = torch.randn(3, 16, 7, 7), torch.randn(3, 6)
    weight = conv.modulated_weight(w)
    s = conv.affine(w)
    by_hand = conv.weight[None] / math.sqrt(16 * 9) * s[:, None, :, None, None]
    by_hand = by_hand / torch.sqrt((by_hand ** 2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    assert torch.allclose(weight, by_hand, atol=1e-6)
    assert torch.allclose(weight.pow(2).sum(dim=(2, 3, 4)), torch.ones(3, 8), atol=1e-5)   # StyleGAN2's property
    out = conv(x, w)
    for b in range(3):
        assert torch.allclose(out[b:b + 1], F.conv2d(x[b:b + 1], weight[b], padding=1), atol=1e-5)
    big = torch.randn(8, 16, 12, 12)                                # unit-variance input -> unit-variance output
    assert abs(conv(big, torch.randn(8, 6))[..., 1:-1, 1:-1].std().item() - 1.0) < 0.1
    conv.demodulate = False
    assert torch.allclose(conv.modulated_weight(w), conv.weight[None] / math.sqrt(144) * s[:, None, :, None, None])


def test_mapping_network_normalises_z_and_tracks_mean_w():
    torch.manual_seed(0)
    mapping = MappingNetwork(z_dim=8, w_dim=6, n_layers=8)
    layers = [m for m in mapping.modules() if isinstance(m, EqualizedLinear)]
    assert len(layers) == 8 and all(m.lr_mul == 0.01 for m in layers)
    z = torch.randn(5, 8)
    w = mapping(z)
    assert w.shape == (5, 6)
    assert torch.allclose(mapping(3.0 * z), w, atol=1e-5)           # pixel norm of z: only its direction counts
    mapping.update_w_avg(w, beta=0.9)
    assert torch.allclose(mapping.w_avg, 0.1 * w.mean(dim=0))


# -- conditional batch norm (projection-D generators, BigGAN) -----------------------------------------------------
def test_conditional_batch_norm_equals_its_formula_and_starts_as_plain_batch_norm():
    from dgm.nn.conditional import ConditionalBatchNorm

    torch.manual_seed(0)
    x, h = torch.randn(6, 3, 4, 4), torch.randn(6, 5)
    cbn = ConditionalBatchNorm(3, 5)
    plain = nn.BatchNorm2d(3, affine=False)
    assert torch.allclose(cbn(x, h), plain(x), atol=1e-6)  # zero-initialised maps: gain 1, bias 0
    with torch.no_grad():
        cbn.gain.weight.normal_()
        cbn.bias.weight.normal_()
    mu = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    gain = (1 + h @ cbn.gain.weight.T)[:, :, None, None]
    bias = (h @ cbn.bias.weight.T)[:, :, None, None]
    want = gain * (x - mu) / torch.sqrt(var + 1e-5) + bias
    assert torch.allclose(cbn(x, h), want, atol=1e-5)
    # a different conditioning vector for example 0 changes example 0's output only (eval mode: no batch coupling)
    cbn.eval()
    h2 = h.clone()
    h2[0] += 1
    d = (cbn(x, h) - cbn(x, h2)).flatten(1).abs().sum(1)
    assert d[0] > 0 and torch.all(d[1:] == 0)
    flat = ConditionalBatchNorm(3, 5, dims=1)
    assert flat(torch.randn(6, 3), h).shape == (6, 3)
