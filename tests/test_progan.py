"""ProGAN (--arch progan): fade-in, equalized lr, the growth schedule, training with every loss family, exact resume
across a growth phase, DDP; and --image-size 32 (zero padding) for mnist / fashion-mnist with the classifier's crop."""
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dgm
from conftest import torchrun
from dgm.cli import main
from dgm.data import load_dataset
from dgm.errors import DgmError
from dgm.models import build_model
from dgm.models.gan_nets.progan import ProGANDiscriminator, ProGANGenerator, progan_schedule
from dgm.nn.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from dgm.nn.resample import downsample, upsample
from dgm.objectives import OBJECTIVES

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def _nets(size=16, **kw):
    torch.manual_seed(0)
    g = ProGANGenerator(6, 1, size, 4, phase=10, **kw)
    d = ProGANDiscriminator(1, size, 4, phase=10, eqlr=kw.get("eqlr", True))
    return g, d


def test_schedule_is_a_function_of_images_shown():
    s = [progan_schedule(n, 3, 10) for n in (0, 9, 10, 15, 19, 20, 29, 30, 35, 50, 10 ** 9)]
    assert s == [(0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 0.9), (1, 1.0), (1, 1.0), (2, 0.0), (2, 0.5), (2, 1.0),
                 (2, 1.0)]
    assert progan_schedule(0, 3, 10, growing=False) == (2, 1.0)
    g, d = _nets()
    for n in (0, 15, 35, 60):
        g.set_progress(n)
        d.set_progress(n)
        assert g.stage == d.stage == progan_schedule(n, 3, 10)


def test_generator_fade_in_alpha_0_is_the_lower_resolution_upsampled_and_alpha_1_the_new_block():
    g, _ = _nets()
    z = torch.randn(5, 6)
    for k in (1, 2):
        low = g.at(z, k - 1, 1.0)
        assert torch.equal(g.at(z, k, 0.0), upsample(low))
        h = g.blocks[0](g.dense(g.input_norm(z)).view(5, g.w0, 4, 4))
        for j in range(1, k):
            h = g.blocks[j](upsample(h))
        new = g.to_rgb[k](g.blocks[k](upsample(h)))
        assert torch.equal(g.at(z, k, 1.0), new)
        mid = g.at(z, k, 0.25)
        assert torch.allclose(mid, 0.75 * upsample(low) + 0.25 * new, atol=1e-6)
    g.set_progress(15)  # (1, 0.5): G's output is the 8x8 image nearest-upsampled to the data size
    with torch.no_grad():
        assert torch.equal(g(z), upsample(g.at(z, 1, 0.5)))


def test_discriminator_fade_in_alpha_0_is_the_lower_resolution_d_and_alpha_1_the_new_block():
    _, d = _nets()
    for k in (1, 2):
        x = torch.randn(3, 1, 4 * 2 ** k, 4 * 2 ** k)
        assert torch.equal(d.features_at(x, k, 0.0), d.features_at(downsample(x), k - 1, 1.0))
        h = downsample(d.blocks[k](d.from_rgb[k](x)))
        for j in range(k - 1, 0, -1):
            h = downsample(d.blocks[j](h))
        assert torch.equal(d.features_at(x, k, 1.0), d.blocks[0](h))


def test_reals_are_pooled_to_the_current_resolution_and_faded_in():
    _, d = _nets()
    x = torch.rand(2, 1, 16, 16)
    d.set_progress(0)  # 4x4
    assert torch.allclose(d.reals(x), upsample(upsample(F.avg_pool2d(x, 4))), atol=1e-6)
    d.set_progress(10)  # 8x8 fading in at alpha 0: the 4x4 image, upsampled
    assert torch.allclose(d.reals(x), upsample(upsample(F.avg_pool2d(x, 4))), atol=1e-6)
    d.set_progress(15)  # alpha 0.5
    x8 = F.avg_pool2d(x, 2)
    want = upsample(0.5 * upsample(F.avg_pool2d(x8, 2)) + 0.5 * x8)
    assert torch.allclose(d.reals(x), want, atol=1e-6)
    d.set_progress(30)  # 16x16 at alpha 0 = the 8x8 image; at the data size, stabilised: x itself
    d.set_progress(40)
    assert torch.allclose(d.reals(x), x, atol=1e-6)


def test_equalized_learning_rate_scales_by_hes_constant_at_run_time_and_can_be_switched_off():
    g, d = _nets()
    convs = [m for m in [*g.modules(), *d.modules()] if isinstance(m, (EqualizedConv2d, EqualizedLinear))]
    assert convs and not [m for m in [*g.modules(), *d.modules()] if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    conv = g.blocks[1][0]  # 3x3, 16 -> 8 channels: c = sqrt(2) / sqrt(16 * 9)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.1)  # stored N(0, 1)
    x = torch.randn(2, conv.weight.shape[1], 5, 5)
    c = math.sqrt(2) / math.sqrt(conv.weight.shape[1] * 9)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * c, conv.bias, padding=1), atol=1e-6)
    with torch.no_grad():
        conv.weight.mul_(2)  # the scale is applied at run time, not folded into the stored weight
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * c, conv.bias, padding=1), atol=1e-6)
    plain, _ = _nets(eqlr=False)
    assert not [m for m in plain.modules() if isinstance(m, (EqualizedConv2d, EqualizedLinear))]
    w = plain.blocks[1][0].weight
    assert w.std().item() == pytest.approx(c, rel=0.2)  # He's initialisation instead


def test_pixel_norm_in_g_unless_switched_off():
    g, _ = _nets()
    assert sum(isinstance(m, PixelNorm) for m in g.modules()) == 2 + 2 * 2 + 1
    h = g.blocks[0](g.dense(g.input_norm(torch.randn(3, 6))).view(3, g.w0, 4, 4))
    assert torch.allclose(h.pow(2).mean(1), torch.ones(3, 4, 4), atol=1e-4)
    off, _ = _nets(pixelnorm=False)
    assert not any(isinstance(m, PixelNorm) for m in off.modules())


def _train(out, *extra, data=("--data", "digits")):
    args = ["train", "gan", "--arch", "progan", *data, "--batch-size", "8", "--hidden", "4", "--latent-dim", "8",
            "--phase-images", "24", "--no-progress", "--n-samples", "0", "--deterministic", "--out", str(out), *extra]
    assert main(args) == 0


def _final(run):
    return torch.load(sorted((Path(run) / "checkpoints").glob("ckpt-*.pt"))[-1], weights_only=True)


@pytest.mark.parametrize("objective,extra", [("non-saturating", ["--mbstd"]), ("wgan-gp", ["--drift", "0.001"]),
                                             ("hinge", ["--no-growing", "--no-eqlr", "--no-pixelnorm"])])
def test_trains_two_steps_with_each_loss_family(tmp_path, objective, extra):
    _train(tmp_path / "r", "--objective", objective, "--steps", "2", "--n-critic", "1", *extra)
    ck = _final(tmp_path / "r")
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    m = dgm.load(tmp_path / "r")
    x = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 8, 8) and torch.isfinite(x).all()


def test_resume_is_bit_for_bit_across_a_phase_boundary_and_in_the_middle_of_a_fade_in(tmp_path):
    # batch 8, phase 24: steps 0-2 at 4x4, the fade-in to 8x8 at steps 3-5 (alpha 0, 1/3, 2/3), stable from step 6
    common = ["--ema-decay", "0.9", "--mbstd", "--ckpt-every", "1"]
    _train(tmp_path / "full", *common, "--steps", "7")
    _train(tmp_path / "part", *common, "--steps", "2")
    for steps in ("5", "7"):  # resumed before the boundary, then mid-fade
        assert main(["train", "gan", "--out", str(tmp_path / "part"), "--resume", "--steps", steps,
                     "--no-progress"]) == 0
    a, b = _final(tmp_path / "full"), _final(tmp_path / "part")
    assert a["step"] == b["step"] == 7
    assert int(a["model"]["generator.shown"]) == 6 * 8
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for name in ("d", "g"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        for i in sa:
            for k, v in sa[i].items():
                assert torch.equal(v, sb[i][k]) if torch.is_tensor(v) else v == sb[i][k]


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process_through_a_fade_in(tmp_path):
    # batch 16, phase 24: steps at 0, 16 and 32 images shown: 4x4, 4x4, then the 8x8 fade-in at alpha 1/3. (Without
    # --mbstd: its groups are drawn from each process's own batch, so it is not the 1-process layer under DDP.)
    common = ["train", "gan", "--arch", "progan", "--data", "digits", "--steps", "3", "--batch-size", "16",
              "--hidden", "4", "--latent-dim", "8", "--phase-images", "24", "--no-progress",
              "--n-samples", "0", "--device", "cpu"]
    torchrun(common, tmp_path / "ddp")
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = _final(tmp_path / "ddp"), _final(tmp_path / "one")
    for k in a["model"]:
        assert torch.allclose(a["model"][k].float(), b["model"][k].float(), rtol=1e-5, atol=1e-7), k


def test_arch_options_are_refused_with_other_archs_and_drift_with_other_objectives(capsys):
    for args in (["--arch", "dcgan", "--no-growing"], ["--arch", "dcgan", "--phase-images", "10"],
                 ["--arch", "progan", "--drift", "0.001"], ["--arch", "progan", "--d-norm", "batch"],
                 ["--arch", "progan", "--spectral-norm"]):
        assert main(["train", "gan", "--data", "digits", "--steps", "1", "--no-progress", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("dgm: error:") and len(err.splitlines()) == 1, err
    assert "drift" in OBJECTIVES.get("wgan-gp").options


def test_drift_adds_epsilon_times_the_mean_squared_real_score():
    r, f = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.5, 0.5, 2.0])
    obj = OBJECTIVES.get("wgan-gp")
    assert obj.d(r, f, drift=0.001).item() == pytest.approx(f.mean() - r.mean() + 0.001 * (r ** 2).mean())
    assert torch.equal(obj.d(r, f), f.mean() - r.mean())


def test_sizes_other_than_4_times_a_power_of_two_are_refused():
    with pytest.raises(DgmError, match="--image-size 32"):
        build_model("gan", dict(channels=1, height=28, width=28, levels=256, arch="progan"))


# ------------------------------------------------------------------------------ --image-size 32 (zero padding)

def _idx(arr):
    return bytes([0, 0, 8, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes() + arr.astype(np.uint8).tobytes()


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.RandomState(0)
    d = tmp_path / "mnist"
    d.mkdir()
    for split, n in (("train", 40), ("t10k", 10)):
        (d / f"{split}-images-idx3-ubyte").write_bytes(_idx(rng.randint(0, 256, (n, 28, 28))))
        (d / f"{split}-labels-idx1-ubyte").write_bytes(_idx(rng.randint(0, 10, n)))
    return d


def test_image_size_32_is_exact_zero_padding_and_other_sizes_are_refused(tiny_mnist, tmp_path, capsys):
    a = load_dataset("mnist", "train", data_dir=tiny_mnist)
    b = load_dataset("mnist", "train", data_dir=tiny_mnist, image_size=32)
    ra, rb = np.asarray(a.raw), np.asarray(b.raw)
    assert rb.shape == (len(ra), 1, 32, 32) and np.array_equal(rb[:, :, 2:30, 2:30], ra)
    border = rb.copy()
    border[:, :, 2:30, 2:30] = 0
    assert not border.any()
    assert np.array_equal(np.asarray(load_dataset("mnist", "train", data_dir=tiny_mnist, image_size=28).raw), ra)
    for name in ("mnist", "fashion-mnist"):
        with pytest.raises(DgmError, match="28.*32"):
            load_dataset(name, "train", data_dir=tiny_mnist, image_size=16)
    out = tmp_path / "run"
    _train(out, "--steps", "2", data=("--data", "mnist", "--data-dir", str(tiny_mnist), "--image-size", "32"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["options"]["image_size"] == 32 and cfg["model_config"]["height"] == 32
    assert dgm.load(out).sample(2).shape == (2, 1, 32, 32)
    assert main(["train", "gan", "--data", "mnist", "--data-dir", str(tiny_mnist), "--image-size", "30",
                 "--steps", "1", "--no-progress", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "28" in err and "32" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason=f"{FASHION_DIR} missing")
def test_fashion_classifier_crops_the_padding_back_off():
    from dgm.metrics.extractors import extract, load_features

    net = load_features("fashion-mnist")
    a = torch.from_numpy(np.asarray(load_dataset("fashion-mnist", "test").raw[:50])).float() / 255
    b = torch.from_numpy(np.asarray(load_dataset("fashion-mnist", "test", image_size=32).raw[:50])).float() / 255
    fa, pa = extract(net, a)
    fb, pb = extract(net, b)
    assert np.array_equal(fa, fb) and np.array_equal(pa, pb)
    with pytest.raises(DgmError, match="32, 32"):
        net(torch.zeros(2, 1, 30, 30))
    digits = load_features("digits")
    with pytest.raises(DgmError):
        digits(torch.zeros(2, 1, 12, 12))  # only the fashion classifier accepts a padded input
