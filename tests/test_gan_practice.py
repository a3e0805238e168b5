"""Issue 38 A: GAN practice options of `dgm train gan` -- experience replay, label flipping, noise in every layer of
G, D's separate or joint batches, and DCGAN's resampling choices; each one's defining property and its refusals."""
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from dgm.cli import main
from dgm.data import load_dataset
from dgm.errors import DgmError
from dgm.models import build_model
from dgm.models.gan import GANConfig
from dgm.objectives import OBJECTIVES
from dgm.training import STEPS, TrainConfig, Trainer
from dgm.training.gan_step import _Critic

POINTS = dict(channels=2, height=1, width=1, levels=0, data_kind="points")
IMAGES = dict(channels=1, height=8, width=8, levels=256, data_kind="images")


def _step(tmp_path, spec=POINTS, data="ring8", batch=32, seed=0, **opts):
    """A GAN step wired to a trainer (not run): its regularisers set up as in training."""
    torch.manual_seed(seed)
    model = build_model("gan", dict(spec, hidden=8, layers=2, latent_dim=4, **opts))
    step = STEPS.get("gan")(model)
    cfg = TrainConfig(steps=10, batch_size=batch, progress=False, n_samples=0, seed=seed)
    Trainer(step, load_dataset(data, "val"), cfg, tmp_path)
    return step


def _regulariser(step, name):
    return next(r for r in step.regularisers if r.part_name == name)


def _one_line_refusal(argv, capsys, needle):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dgm: error: ") and "Traceback" not in err, err
    assert needle in lines[0], lines[0]


# -- experience replay -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("k,share", [(40, 0.5), (100, 0.25), (10, 1.0), (64, 0.0)])
def test_replay_shows_the_stated_share_of_buffer_samples_and_the_buffer_never_exceeds_k(tmp_path, k, share):
    step = _step(tmp_path, replay=k, replay_share=share)
    replay = _regulariser(step, "replay")
    b = 32
    for t in range(12):
        step.d_steps = t
        fake = torch.full((b, 2), float(t))  # each update's fakes carry its number
        shown, _ = replay.d_fakes(step, fake, None)
        assert shown.shape == fake.shape
        old = (shown[:, 0] != t).sum().item()
        assert old == (0 if t == 0 else round(share * b)), (t, old)  # none while the buffer was empty
        assert (shown[:b - old] == t).all()  # the first b - round(P b) rows are this update's own fakes
        assert (shown[b - old:, 0] < t).all()  # the rest are past fakes
        buf = step.replay_buffer
        assert len(buf) == min(k, (t + 1) * b) <= k
        assert set(buf.samples[:, 0].tolist()) <= set(range(t + 1))
    assert (buf.samples[:, 0] >= 6).any()  # full buffers are refreshed: recent fakes replace old ones


def test_replay_keeps_each_samples_label_in_a_conditional_run(tmp_path):
    step = _step(tmp_path, IMAGES, "digits", 16, replay=50, conditional=True, num_classes=10)
    replay = _regulariser(step, "replay")
    for t in range(6):
        step.d_steps = t
        y = torch.randint(10, (16,))
        fake = (t * 100 + y).float()[:, None, None, None].expand(16, 1, 8, 8).contiguous()
        shown, shown_y = replay.d_fakes(step, fake, y)
        assert torch.equal(shown[:, 0, 0, 0].long() % 100, shown_y)  # a replayed fake keeps its own label
    assert step.replay_buffer.labels.shape[0] == len(step.replay_buffer) == 50


from test_gan_training import _final, _train  # noqa: E402  (the GAN run and checkpoint helpers of those tests)


def test_resume_with_a_partly_filled_replay_buffer_equals_the_uninterrupted_run(tmp_path):
    """Every option of this file on at once (replay, flips, layer noise, joint batches): the buffer (96 of 100 after
    3 updates of 32) is restored from the checkpoint, so the resumed run equals the uninterrupted one bit for bit.
    Without the checkpointed buffer the resumed run would replay nothing at step 4 and differ."""
    common = ["--replay", "100", "--replay-share", "0.5", "--flip-labels", "0.2", "--g-layer-noise", "0.1",
              "--g-noise-decay-steps", "10", "--d-batches", "joint"]  # (an anneal over "the whole run" depends on
    #                                                                      --steps, which the two runs give apart)
    _train(tmp_path / "full", *common, "--steps", "6")
    _train(tmp_path / "half", *common, "--steps", "3")
    mid = _final(tmp_path / "half")["family_state"]["parts"]["replay"]
    assert mid["samples"].shape == (96, 2)  # partly filled when interrupted
    assert main(["train", "gan", "--out", str(tmp_path / "half"), "--resume", "--steps", "6", "--no-progress"]) == 0
    a, b = _final(tmp_path / "full"), _final(tmp_path / "half")
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ra, rb = a["family_state"].pop("parts")["replay"], b["family_state"].pop("parts")["replay"]
    assert ra["samples"].shape == (100, 2) and torch.equal(ra["samples"], rb["samples"])
    assert a["family_state"] == b["family_state"]
    for name in ("d", "g"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        for i in sa:
            for k, v in sa[i].items():
                assert torch.equal(v, sb[i][k]) if torch.is_tensor(v) else v == sb[i][k]


# -- label flipping --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", [n for n in OBJECTIVES.names() if OBJECTIVES.get(n).targets is not None])
def test_without_flips_the_flipped_loss_is_the_objectives_d_loss(objective):
    c = GANConfig(**POINTS, objective=objective, smooth_alpha=0.8, smooth_beta=0.1)
    obj = OBJECTIVES.get(objective)
    g = torch.Generator().manual_seed(0)
    d_real, d_fake = torch.randn(64, generator=g), torch.randn(64, generator=g)
    none = torch.zeros(64, dtype=torch.bool)
    plain = obj.d_loss(d_real, d_fake, obj.init_state(), c)
    assert torch.allclose(obj.d_loss_flipped(d_real, d_fake, none, none, c), plain, rtol=1e-6, atol=1e-7)
    every = torch.ones(64, dtype=torch.bool)  # flipping all swaps the roles: the loss of the batches swapped
    swapped = obj.d_loss(d_fake, d_real, obj.init_state(), c)
    assert torch.allclose(obj.d_loss_flipped(d_real, d_fake, every, every, c), swapped, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("share", [0.1, 0.3])
def test_label_flipping_flips_the_stated_share_on_average(tmp_path, share):
    """D right and confident on every example (logit +-20): a kept example costs ~0, a flipped one ~20, so D's loss
    / 20 is the share of real plus the share of fake examples flipped; over 200 updates of 64 + 64 it is 2P."""
    step = _step(tmp_path, flip_labels=share)
    d_real, d_fake = torch.full((64,), 20.0), torch.full((64,), -20.0)
    losses, masks = [], []
    for t in range(200):
        step.d_steps = t
        flips = step._flips(64, 64)
        masks.append(torch.cat(flips).float())
        losses.append(step._d_loss(d_real, d_fake, flips).item())
    masks = torch.stack(masks)
    assert abs(masks.mean().item() - share) < 0.01  # 25,600 coin flips: 4 standard deviations < 0.012
    assert abs(sum(losses) / len(losses) / 20 - 2 * share) < 0.02
    step.d_steps = 0
    again = torch.cat(step._flips(64, 64)).float()
    assert torch.equal(again, masks[0])  # a stream fixed by (seed, D update): a resumed run flips the same


def test_label_flipping_never_touches_gs_loss(tmp_path):
    """--update-order simultaneous takes G's loss against D before this update: with and without flips D's losses
    differ, G's loss and G's new weights are the same."""
    batch = (load_dataset("ring8", "val").points[:32], torch.zeros(32))
    runs = {}
    for p in (0.0, 0.4):
        step = _step(tmp_path / str(p), flip_labels=p, update_order="simultaneous")
        out = step(batch)
        runs[p] = (out["loss_d"].item(), out["loss_g"].item(), step.model.generator.state_dict())
    (d0, g0, w0), (d1, g1, w1) = runs[0.0], runs[0.4]
    assert d0 != d1
    assert g0 == g1
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


# -- noise in every layer of G ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec,data,arch", [(POINTS, "ring8", "mlp"), (POINTS, "ring8", "veegan"),
                                            (IMAGES, "digits", "dcgan")])
def test_layer_noise_changes_gs_output_in_training_mode_only(tmp_path, spec, data, arch):
    step = _step(tmp_path, spec, data, 16, arch=arch, g_layer_noise=0.5)
    g = step.model.generator
    z = torch.randn(16, step.model.config.latent_dim)
    g.train()
    noisy = g(z)
    for h in step.g_noise_hooks:
        h.remove()
    clean = g(z)
    assert not torch.allclose(noisy, clean)
    if arch == "dcgan":  # the output's tanh is not a hidden layer: no noise after it
        assert noisy.abs().max() <= 1
    step2 = _step(tmp_path / "b", spec, data, 16, arch=arch, g_layer_noise=0.5)
    g2 = step2.model.generator
    g2.eval()
    with torch.no_grad():
        assert torch.equal(g2(z), g2(z))
        sample = step2.model.sample(8, generator=torch.Generator().manual_seed(1))
        for h in step2.g_noise_hooks:
            h.remove()
        assert torch.equal(step2.model.sample(8, generator=torch.Generator().manual_seed(1)), sample)


def test_layer_noise_is_annealed_to_zero_unless_constant(tmp_path):
    step = _step(tmp_path, g_layer_noise=0.4, g_noise_decay_steps=4)
    r = _regulariser(step, "g-layer-noise")
    seen = []
    for t in range(6):
        step.engine.global_step = t
        seen.append(r.sigma(step))
    assert seen == pytest.approx([0.4, 0.3, 0.2, 0.1, 0.0, 0.0])
    const = _step(tmp_path / "c", g_layer_noise=0.4, g_noise_constant=True)
    const.engine.global_step = 1000
    assert _regulariser(const, "g-layer-noise").sigma(const) == 0.4
    assert r.eager_g and not _regulariser(const, "g-layer-noise").eager_g  # an annealed std keeps G eager (--compile)


# -- separate or joint batches ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec,data,opts", [(POINTS, "ring8", {}),
                                            (IMAGES, "digits", {"d_norm": "none"}),
                                            (IMAGES, "digits", {"objective": "began", "d_norm": "none"}),
                                            (IMAGES, "digits", {"d_norm": "layer", "conditional": True,
                                                                "num_classes": 10, "cond": "ac"})])
def test_separate_and_joint_batches_give_the_same_d_loss_without_batch_statistics(tmp_path, spec, data, opts):
    step = _step(tmp_path, spec, data, 16, **opts)
    m = step.model
    energy = m.objective.kind == "energy"
    if energy:  # the auto-encoder D's decoder is a DCGAN generator with batch norm: on its running statistics
        m.discriminator.decoder.eval()
    assert not any(isinstance(x, nn.modules.batchnorm._BatchNorm) and x.training for x in m.discriminator.modules())
    real = torch.randn(16, *m.data_shape).clamp(-1, 1)
    fake = m.sample(16, generator=torch.Generator().manual_seed(2))
    y = torch.arange(16) % 10 if m.conditional else None
    sep = _Critic(m.discriminator, energy, joint=False)(real, fake, y_real=y, y_fake=y, reps=not energy)
    joint = _Critic(m.discriminator, energy, joint=True)(real, fake, y_real=y, y_fake=y, reps=not energy)
    for a, b in [(sep[0], joint[0]), (sep[1], joint[1])] + ([] if sep[4] is None else list(zip(sep[4], joint[4]))):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert torch.allclose(step._d_loss(sep[0], sep[1]), step._d_loss(joint[0], joint[1]), rtol=1e-6, atol=1e-7)


def test_unrolled_copies_of_ds_update_take_the_joint_pass_too(tmp_path):
    """--unroll-steps with --d-batches joint: the copies of D's update score [real; fake] in one pass; without batch
    statistics G's unrolled loss is the separate passes' one (and packs of 2 split at the reals' last pack)."""
    real = load_dataset("ring8", "val").points[:16]
    losses = []
    for mode in ("separate", "joint"):
        step = _step(tmp_path / mode, batch=16, d_batches=mode, pack=2)
        assert step.critic.joint == (mode == "joint")
        fake = step.model.generator(torch.randn(16, step.model.config.latent_dim, generator=torch.Generator()
                                                .manual_seed(3)))
        losses.append(step.unrolled_g_loss(real, fake, 2))
    assert torch.allclose(losses[0], losses[1], rtol=1e-5, atol=1e-6)


def test_joint_batches_differ_when_d_has_batch_norm(tmp_path):
    """The joint pass is one batch: a D with batch norm (DCGAN's default) normalises reals and fakes together."""
    step = _step(tmp_path, IMAGES, "digits", 16)
    m = step.model
    assert any(isinstance(x, nn.BatchNorm2d) for x in m.discriminator.modules())
    real, fake = torch.randn(16, 1, 8, 8), m.sample(16, generator=torch.Generator().manual_seed(2))
    m.discriminator.train()
    sep = _Critic(m.discriminator, False, joint=False)(real, fake)
    joint = _Critic(m.discriminator, False, joint=True)(real, fake)
    assert not torch.allclose(sep[0], joint[0])


@pytest.mark.slow  # two processes: about 15 s
def test_joint_batches_run_under_ddp_and_equal_one_process(tmp_path):
    common = ["train", "gan", "--data", "ring8", "--steps", "3", "--batch-size", "32", "--hidden", "16",
              "--no-progress", "--n-samples", "0", "--device", "cpu", "--d-batches", "joint"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgm.cli"]
    ddp = subprocess.run([*cmd, *common, "--out", str(tmp_path / "ddp")], capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert "2 process(es)" in ddp.stdout
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = _final(tmp_path / "ddp"), _final(tmp_path / "one")
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-7), k


# -- DCGAN's resampling ----------------------------------------------------------------------------------------

SIZES = [4, 6, 8, 10, 12, 14, 16, 28, 32, 64]  # even sizes: 1, 2 or 3 doublings from an odd or even start


@pytest.mark.parametrize("upsample", ["transpose", "pixelshuffle", "nearest"])
@pytest.mark.parametrize("downsample", ["stride", "avgpool"])
def test_every_resampling_path_gives_the_stated_shapes_for_every_size(upsample, downsample):
    for size in SIZES:
        for energy in ("non-saturating", "began"):
            m = build_model("gan", dict(IMAGES, height=size, width=size, channels=3, hidden=4, latent_dim=4,
                                        arch="dcgan", objective=energy, upsample=upsample, downsample=downsample,
                                        g_activation="leaky-relu"))
            x = m.sample(2, generator=torch.Generator().manual_seed(0))
            assert x.shape == (2, 3, size, size), (size, x.shape)
            assert m.discriminator(x).shape == (2,), size
            g_acts = {type(a) for a in m.generator.modules() if isinstance(a, (nn.ReLU, nn.LeakyReLU))}
            assert g_acts == {nn.LeakyReLU}
            ups = [mod for mod in m.generator.modules() if isinstance(mod, (nn.ConvTranspose2d, nn.PixelShuffle,
                                                                           nn.Upsample))]
            kind = {"transpose": nn.ConvTranspose2d, "pixelshuffle": nn.PixelShuffle, "nearest": nn.Upsample}
            assert ups and all(isinstance(u, kind[upsample]) for u in ups)
            pools = [mod for mod in m.discriminator.modules() if isinstance(mod, nn.AvgPool2d)]
            assert bool(pools) == (downsample == "avgpool")


def test_the_default_dcgan_is_the_old_network_and_an_old_config_loads():
    """Defaults: the same modules and parameter names as before issue 38; configs without the new keys (flat, as
    before issue 31, or composed with an empty arch_options) load with the defaults."""
    old_flat = dict(IMAGES, objective="non-saturating", arch="dcgan", latent_dim=8, hidden=4, layers=3,
                    d_norm="auto", spectral_norm=None, n_critic=0, lr_g=None, lr_d=None, update_order="alternating",
                    protocol="", ema_decay=0.0, instance_noise=0.0, pack=1)
    for d in (old_flat, {**old_flat, "arch_options": {}, "regularisers": {}}):
        c = GANConfig.from_dict(d)
        assert (c.upsample, c.downsample, c.g_activation) == ("transpose", "stride", "relu")
        assert not {"replay", "label-flip", "g-layer-noise", "d-batches"} & set(c.regularisers)
    m = build_model("gan", dict(IMAGES, arch="dcgan", hidden=4, latent_dim=8))
    keys = {k: tuple(v.shape) for k, v in m.generator.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert keys == {"project.0.weight": (32, 8), "project.0.bias": (32,), "project.1.weight": (32,),
                    "project.1.bias": (32,), "project.1.running_mean": (32,), "project.1.running_var": (32,),
                    "body.0.weight": (8, 4, 4, 4), "body.0.bias": (4,), "body.1.weight": (4,), "body.1.bias": (4,),
                    "body.1.running_mean": (4,), "body.1.running_var": (4,), "body.3.weight": (4, 1, 4, 4),
                    "body.3.bias": (1,)}
    assert [type(x) for x in m.generator.body] == [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.ConvTranspose2d,
                                                   nn.Tanh]


# -- refusals --------------------------------------------------------------------------------------------------

TOY = ["train", "gan", "--data", "ring8", "--steps", "1", "--batch-size", "16", "--hidden", "4", "--no-progress"]
DIGITS = ["train", "gan", "--data", "digits", "--steps", "1", "--batch-size", "16", "--hidden", "4", "--no-progress"]


@pytest.mark.parametrize("argv,needle", [
    (TOY + ["--objective", "wgan-gp", "--flip-labels", "0.1"], "objective wgan-gp has none"),
    (TOY + ["--objective", "hinge", "--flip-labels", "0.1"], "objective hinge has none"),
    (TOY + ["--flip-labels", "0.1", "--unroll-steps", "2"], "--flip-labels does not flip"),
    (TOY + ["--flip-labels", "1.5"], "--flip-labels must be in [0, 1]"),
    (TOY + ["--replay", "8", "--replay-share", "-0.1"], "--replay-share must be in [0, 1]"),
    (TOY + ["--replay-share", "0.3"], "--replay-share: an option of regulariser replay, which is off"),
    (TOY + ["--replay", "-1"], "--replay must be >= 0"),
    (TOY + ["--g-layer-noise", "-1"], "--g-layer-noise must be >= 0"),
    (TOY + ["--g-layer-noise", "0.1", "--g-noise-constant", "--g-noise-decay-steps", "5"], "drop one"),
    (TOY + ["--d-batches", "both"], "--d-batches must be one of separate, joint"),
    (DIGITS + ["--arch", "stylegan", "--g-layer-noise", "0.1"], "--arch stylegan's generator applies"),
    (DIGITS + ["--arch", "biggan", "--g-layer-noise", "0.1"], "--arch biggan's generator applies"),
    (DIGITS + ["--arch", "sagan", "--upsample", "pixelshuffle"], "--upsample: an option of --arch dcgan"),
    (TOY + ["--arch", "mlp", "--downsample", "avgpool"], "--downsample: an option of --arch dcgan"),
    (DIGITS + ["--arch", "dcgan", "--upsample", "bilinear"], "--upsample must be one of"),
    (DIGITS + ["--arch", "dcgan", "--g-activation", "gelu"], "--g-activation must be one of"),
    (["train", "infogan", "--data", "digits", "--steps", "1", "--cat-codes", "3", "--replay", "8"],
     "--replay is for dgm train gan"),
    (["train", "ssgan", "--data", "digits", "--steps", "1", "--d-batches", "joint"],
     "--d-batches is for dgm train gan"),
])
def test_a_practice_option_that_does_not_apply_is_refused_in_one_line(argv, needle, capsys, tmp_path):
    _one_line_refusal([*argv, "--out", str(tmp_path / "run")], capsys, needle)
    assert not (tmp_path / "run").exists()


def test_the_checks_hold_for_configs_built_in_python():
    with pytest.raises(DgmError, match="--replay-share must be in"):
        GANConfig(**POINTS, replay=4, replay_share=float("nan"))
    with pytest.raises(DgmError, match="--flip-labels"):
        GANConfig(**POINTS, objective="began", flip_labels=0.2)
