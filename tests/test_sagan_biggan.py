"""SAGAN and BigGAN (issue 17): training with each objective family, resume, DDP, self-attention in G, attention
maps, BigGAN's skip-z and shared embedding, orthogonal regularisation in G's loss, the architectures' defaults."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dgm
from dgm.cli import main
from dgm.data import load_dataset
from dgm.models import build_model
from dgm.models.gan import GAN, GANConfig
from dgm.models.gan_nets.biggan import BigGANGenerator
from dgm.nn import SelfAttention
from dgm.training import STEPS, TrainConfig, Trainer

TINY = ["--hidden", "8", "--latent-dim", "8", "--batch-size", "8", "--no-progress", "--n-samples", "0"]


def _train(out, *extra):
    return main(["train", "gan", "--data", "digits", "--out", str(out), *TINY, *extra])


def _final(run):
    ck = sorted((Path(run) / "checkpoints").glob("ckpt-*.pt"))[-1]
    return torch.load(ck, weights_only=True)


@pytest.mark.parametrize("arch", ["sagan", "biggan"])
@pytest.mark.parametrize("objective", ["non-saturating", "wgan-gp", "hinge"])
def test_trains_two_steps_with_each_objective_family(tmp_path, arch, objective, capsys):
    out = tmp_path / "run"
    assert _train(out, "--arch", arch, "--objective", objective, "--n-critic", "1", "--steps", "2") == 0, \
        capsys.readouterr().err
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert train and all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in train)
    cfg = json.loads((out / "config.json").read_text())["model_config"]
    assert (cfg["arch"], cfg["objective"], cfg["spectral_norm"]) == (arch, objective, True)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3)])  # 8x8 digits: the training tests
@pytest.mark.parametrize("arch", ["sagan", "biggan"])
def test_image_sizes_and_channels(arch, size, channels):
    torch.manual_seed(0)
    m = GAN(GANConfig(arch=arch, height=size, width=size, channels=channels, hidden=4, latent_dim=8))
    x = m.generator(torch.randn(3, 8))
    assert x.shape == (3, channels, size, size) and x.abs().max() <= 1
    m.discriminator(x).sum().backward()
    assert all(p.grad is not None for p in m.generator.parameters() if p.requires_grad)


@pytest.mark.slow
def test_rgb_folder_at_32_trains(tmp_path):
    rng = np.random.RandomState(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(rng.randint(0, 256, (32, 32, 3)).astype(np.uint8), "RGB").save(folder / f"{i:02d}.png")
    out = tmp_path / "rgb"
    assert main(["train", "gan", "--arch", "biggan", "--data", "images", "--data-dir", str(folder), "--steps", "1",
                 "--out", str(out), *TINY, "--batch-size", "4"]) == 0
    assert dgm.load(out).sample(2).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("arch", ["sagan", pytest.param("biggan", marks=pytest.mark.slow)])
def test_resumed_run_equals_uninterrupted(tmp_path, arch):
    common = ["--arch", arch, "--ckpt-every", "2", "--deterministic"]
    assert _train(tmp_path / "full", *common, "--steps", "3") == 0
    assert _train(tmp_path / "half", *common, "--steps", "2") == 0
    assert main(["train", "gan", "--out", str(tmp_path / "half"), "--resume", "--steps", "3", "--no-progress"]) == 0
    a, b = _final(tmp_path / "full"), _final(tmp_path / "half")
    assert a["step"] == b["step"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for name in ("d", "g"):
        for i, st in a["optimizers"][name]["state"].items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    assert torch.equal(v, b["optimizers"][name]["state"][i][k])


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["sagan", "biggan"])
def test_two_process_ddp_runs(tmp_path, arch):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgm.cli",
           "train", "gan", "--arch", arch, "--data", "digits", "--steps", "2", "--device", "cpu",
           "--out", str(tmp_path / "ddp"), *TINY]
    ddp = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert "2 process(es)" in ddp.stdout
    assert _final(tmp_path / "ddp")["step"] == 2


def test_sagan_attention_in_g_is_active():
    torch.manual_seed(0)
    m = GAN(GANConfig(arch="sagan", height=32, width=32, hidden=8, latent_dim=8))
    g = m.generator
    (attn,) = [a for a in g.modules() if isinstance(a, SelfAttention)]
    assert attn.attention is None and float(attn.gamma.detach()) == 0
    z = torch.randn(4, 8)
    g.eval()
    captured = {}
    attn.register_forward_hook(lambda mod, inp, out: captured.update(x=inp[0], y=out))
    x0 = g(z)
    assert captured["x"].shape[-1] == 16  # the 16x16 map (--attn-res 16) of a 32x32 image
    assert torch.equal(captured["y"], captured["x"])  # gamma 0: the identity
    g.train()
    m.discriminator(g(z)).mean().backward()
    assert attn.gamma.grad is not None and float(attn.gamma.grad) != 0  # it will move away from 0
    g.eval()
    with torch.no_grad():
        attn.gamma.fill_(0.5)
    assert not torch.allclose(g(z), x0)
    # and in D: the 16x16 map after the first stride-2 convolution
    (attn_d,) = [a for a in m.discriminator.modules() if isinstance(a, SelfAttention)]
    assert attn_d.f.in_channels == 8


@pytest.mark.slow  # multi-second; moved out of the default run to keep it under 10 minutes
def test_attention_maps_saved_and_refused_without_attention(tmp_path, capsys):
    out = tmp_path / "sa"
    assert _train(out, "--arch", "sagan", "--steps", "1") == 0
    model = dgm.load(out)
    x, beta = model.attention_maps(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 8, 8) and beta.shape == (3, 64, 64)
    assert torch.allclose(beta.sum(1), torch.ones(3, 64))  # softmax over the attended positions i, per query j
    capsys.readouterr()
    png = tmp_path / "attn.png"
    assert main(["sample", str(out), "--attention-maps", "-n", "3", "--out", str(png)]) == 0
    assert png.stat().st_size > 500 and Image.open(png).size[0] > 5 * 32
    none = tmp_path / "none"
    assert _train(none, "--arch", "sagan", "--attn-res", "0", "--steps", "1") == 0
    capsys.readouterr()
    assert main(["sample", str(none), "--attention-maps", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "self-attention" in err and not (tmp_path / "x.png").exists()


def _cbn_inputs(g, z, y=None):
    seen = []
    for block in g.blocks:
        block.bn1.register_forward_pre_hook(lambda mod, args: seen.append(args[1]))
    g(z, y)
    return seen


def test_skip_z_chunk_k_feeds_block_k_only():
    torch.manual_seed(0)
    g = BigGANGenerator(latent=12, channels=1, size=32, base=4, attn_res=16)  # 3 blocks: 4 chunks of 3
    assert g.chunks == [3, 3, 3, 3]
    z = torch.randn(2, 12)
    base = _cbn_inputs(g, z)
    z0, hs = g.conditions(z)
    assert torch.equal(z0, z[:, :3]) and all(torch.equal(h, b) for h, b in zip(hs, base))
    for k in range(1, 4):
        z2 = z.clone()
        z2[:, 3 * k:3 * k + 3] += 1
        now = _cbn_inputs(g, z2)
        changed = [not torch.equal(a, b) for a, b in zip(base, now)]
        assert changed == [i == k - 1 for i in range(3)]
        assert torch.equal(g.conditions(z2)[0], z0)
    flat = BigGANGenerator(latent=12, channels=1, size=32, base=4, attn_res=0, skip_z=False)
    assert flat.chunks == [12] and _cbn_inputs(flat, z) == [None] * 3  # plain batch norm, z only at the input


@pytest.mark.parametrize("shared", [True, False])
def test_conditional_generator_embeds_classes_in_every_cbn(shared):
    torch.manual_seed(0)
    g = BigGANGenerator(latent=12, channels=1, size=32, base=4, attn_res=16, num_classes=3, shared_embed=shared,
                        embed_dim=5)
    assert len(g.embed) == (1 if shared else 3)
    z, y = torch.randn(2, 12), torch.tensor([0, 2])
    hs = _cbn_inputs(g, z, y)
    assert [h.shape[1] for h in hs] == [3 + 5] * 3
    embeds = [h[:, 3:] for h in hs]
    assert all(torch.equal(e, embeds[0]) for e in embeds) == shared
    other = _cbn_inputs(g, z, torch.tensor([1, 2]))
    for h, o in zip(hs, other):
        assert not torch.equal(h[0], o[0]) and torch.equal(h[1], o[1]) and torch.equal(h[0, :3], o[0, :3])
    with pytest.raises(ValueError):
        g(z)


def _one_step(tmp_path, **opts):
    torch.manual_seed(0)
    model = build_model("gan", dict(channels=1, height=8, width=8, levels=17, arch="biggan", hidden=4, latent_dim=8,
                                    **opts))
    step = STEPS.get("gan")(model)
    data = load_dataset("digits", "val")
    Trainer(step, data, TrainConfig(steps=1, batch_size=8, progress=False, n_samples=0), tmp_path)
    return step


def test_orthogonal_regularisation_is_in_g_loss_with_its_weight(tmp_path):
    beta = 0.25
    with_reg, without = _one_step(tmp_path / "a", ortho_reg=beta), _one_step(tmp_path / "b", ortho_reg=0.0)
    g = with_reg.model.generator
    by_hand = 0.0
    for name, p in g.named_parameters():
        if p.dim() >= 2 and "embed" not in name:
            m = p.detach().flatten(1)
            gram = m @ m.t()
            by_hand += beta * float(((gram - torch.diag(torch.diag(gram))) ** 2).sum())
    assert by_hand > 0
    x = (load_dataset("digits", "val").tensors()[0][:8].float() / 16) * 2 - 1
    batch = (x, None)
    a, b = with_reg(batch), without(batch)
    assert a["ortho_reg"] == pytest.approx(by_hand, rel=1e-5)
    assert float(a["loss_g"]) == pytest.approx(float(b["loss_g"]) + by_hand, rel=1e-5)
    assert "ortho_reg" not in b


def test_arch_options_refused_with_other_archs(tmp_path, capsys):
    for args in (["--arch", "dcgan", "--attn-res", "8"], ["--arch", "sagan", "--no-skip-z"],
                 ["--arch", "dcgan", "--no-shared-embed"], ["--arch", "biggan", "--no-shared-embed"],
                 ["--arch", "sagan", "--gp-weight", "5"]):
        capsys.readouterr()
        assert _train(tmp_path / "x", *args, "--steps", "1") == 2, args
        err = capsys.readouterr().err
        assert err.startswith("dgm: error:") and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def _optim(tmp_path, arch, **opts):
    model = build_model("gan", dict(channels=1, height=8, width=8, levels=17, arch=arch, hidden=4, latent_dim=8,
                                    **{k: v for k, v in opts.items() if k not in TrainConfig.__dataclass_fields__}))
    step = STEPS.get("gan")(model)
    tc = {k: v for k, v in opts.items() if k in TrainConfig.__dataclass_fields__}
    Trainer(step, load_dataset("digits", "val"), TrainConfig(steps=1, batch_size=8, progress=False, n_samples=0,
                                                             **tc), tmp_path)
    return model.config, [(o.param_groups[0]["lr"], o.param_groups[0].get("betas"))
                          for o in (step.engine.optimizers["d"], step.engine.optimizers["g"])]


@pytest.mark.slow  # multi-second; moved out of the default run to keep it under 10 minutes
def test_defaults_apply_only_when_not_given(tmp_path):
    ttur = [(4e-4, (0.0, 0.9)), (1e-4, (0.0, 0.9))]
    for arch in ("sagan", "biggan"):
        c, opt = _optim(tmp_path / arch, arch)
        assert (c.objective, c.spectral_norm, opt) == ("hinge", True, ttur)
    c, opt = _optim(tmp_path / "ns", "sagan", objective="non-saturating")
    assert (c.objective, opt) == ("non-saturating", ttur)  # the objective given; TTUR still the arch's
    c, opt = _optim(tmp_path / "lr", "sagan", lr_d=1e-3, beta1=0.5)
    assert opt == [(1e-3, (0.5, 0.9)), (1e-4, (0.5, 0.9))]
    c, opt = _optim(tmp_path / "lr2", "biggan", lr=3e-4, spectral_norm=False, ortho_reg=0.0)
    assert (c.spectral_norm, c.ortho_reg, opt) == (False, 0.0, [(3e-4, (0.0, 0.9)), (3e-4, (0.0, 0.9))])
    assert GANConfig(arch="biggan").ortho_reg == 1e-4 and GANConfig(arch="sagan").ortho_reg == 0.0
    c, opt = _optim(tmp_path / "dc", "dcgan")  # unchanged for DCGAN: non-saturating, Adam 2e-4 (0.5, 0.999)
    assert (c.objective, c.spectral_norm, opt) == ("non-saturating", False, [(2e-4, (0.5, 0.999))] * 2)
    c, opt = _optim(tmp_path / "wg", "sagan", objective="wgan")  # RMSprop objectives keep their own rates
    assert opt[0][0] == 5e-5


def test_biggan_truncates_by_resampling():
    torch.manual_seed(0)
    m = GAN(GANConfig(arch="biggan", hidden=4, latent_dim=8))
    assert m.truncation_modes[0] == "resample"
    z = m.sample_latent(200, torch.Generator().manual_seed(0), truncation=0.5)
    assert z.abs().max() <= 0.5 and z.abs().max() > 0.4  # redrawn inside [-PSI, PSI], not scaled by PSI
    a = m.sample(4, generator=torch.Generator().manual_seed(1), truncation=0.5)
    b = m.sample(4, generator=torch.Generator().manual_seed(1), truncation=0.5, truncation_mode="resample")
    assert torch.equal(a, b)
    assert GAN(GANConfig(arch="sagan", hidden=4, latent_dim=8)).truncation_modes[0] == "interpolate"
