"""--arch stylegan (Karras et al. 2019): styles per layer, style mixing, W truncation, noise inputs, R1 (lazy), the
three objective families, exact resume, DDP, the figures, and the refusals."""
import copy
from pathlib import Path

import pytest
import torch

from conftest import torchrun
from dgm.cli import main
from dgm.data import load_dataset
from dgm.errors import DgmError
from dgm.models import build_model
from dgm.nn import adain
from dgm.objectives import gradient_penalty
from dgm.training import STEPS, TrainConfig, Trainer

DIGITS = dict(channels=1, height=8, width=8, levels=17, arch="stylegan", hidden=4, latent_dim=8, mapping_layers=2)


def _gan(**opts):
    torch.manual_seed(0)
    return build_model("gan", {**DIGITS, **opts})


def _randomise_noise_scales(g):
    with torch.no_grad():
        for layer in g.layers:
            layer.noise.weight.normal_()


def _layer_outputs(g, ws, noise):
    """The output of every synthesis layer, and the (input, w) each AdaIN received."""
    outs, seen = [], []
    hooks = [layer.register_forward_hook(lambda m, i, o: outs.append(o.clone())) for layer in g.layers]
    hooks += [layer.style.register_forward_hook(lambda m, i, o: seen.append((i[0].clone(), i[1].clone(), o.clone())))
              for layer in g.layers]
    g.synthesis(ws, noise)
    for h in hooks:
        h.remove()
    return outs, seen


def test_each_layer_reads_its_own_style_through_adain():
    g = _gan().generator.eval()
    _randomise_noise_scales(g)
    ws = g.broadcast(g.mapping(torch.randn(3, 8)))
    noise = g.draw_inputs(3, torch.Generator().manual_seed(1))["noise"]
    outs, seen = _layer_outputs(g, ws, noise)
    for i, (x, w, out) in enumerate(seen):  # AdaIN in G equals y_s (x - mu) / sigma + y_b with (y_s, y_b) = A(w_i)
        assert torch.equal(w, ws[:, i])
        y = g.layers[i].style.style.affine(w)
        c = x.shape[1]
        mu = x.mean(dim=(2, 3), keepdim=True)
        sigma = (x.var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-8).sqrt()
        assert torch.allclose(out, y[:, :c, None, None] * (x - mu) / sigma + y[:, c:, None, None], atol=1e-5)
        assert torch.allclose(out, adain(x, y[:, :c], y[:, c:]))
    for i in range(g.n_layers):  # changing w at layer i changes the layers from i on only
        ws2 = ws.clone()
        ws2[:, i] += torch.randn(3, 8)
        outs2, _ = _layer_outputs(g, ws2, noise)
        for j in range(g.n_layers):
            assert torch.equal(outs[j], outs2[j]) == (j < i), (i, j)


def test_style_mixing_feeds_w1_before_the_crossover_and_w2_after():
    g = _gan().generator.eval()
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    w1, w2 = g.mapping(z1), g.mapping(z2)
    crossover = torch.tensor([1, 3])
    seen = []
    hooks = [layer.style.register_forward_hook(lambda m, i, o: seen.append(i[1].clone())) for layer in g.layers]
    noise = g.draw_inputs(2, torch.Generator().manual_seed(1))["noise"]
    x = g(z1, noise=noise, mix_z=z2, crossover=crossover)
    for h in hooks:
        h.remove()
    for layer, w in enumerate(seen):
        for b in range(2):
            assert torch.equal(w[b], (w1 if layer < crossover[b] else w2)[b]), (layer, b)
    assert not torch.equal(x, g(z1, noise=noise))
    assert torch.equal(g(z1, noise=noise, mix_z=z2, crossover=torch.tensor([4, 4])), g(z1, noise=noise))
    # training draws: crossover L (no mixing) with probability 1 - p, else uniform on 1..L-1
    c = g.draw_inputs(4000, torch.Generator().manual_seed(0), mixing=True)["crossover"]
    assert abs((c == 4).float().mean().item() - 0.1) < 0.02 and set(c[c < 4].tolist()) == {1, 2, 3}


def test_truncation_psi_0_gives_the_mean_w_image_for_every_z():
    m = _gan(noise=False)
    g = m.generator
    with torch.no_grad():
        g.mapping.w_avg.normal_()
    assert m.truncation_modes[0] == "w-mean"
    x = m.sample(5, generator=torch.Generator().manual_seed(0), truncation=0.0)  # default mode: w-mean
    with torch.no_grad():
        ref = g.synthesis(g.broadcast(g.mapping.w_avg.expand(1, -1)))
    assert torch.allclose(x, ref.expand_as(x), atol=1e-6)
    one = m.sample(5, generator=torch.Generator().manual_seed(0), truncation=1.0)
    assert torch.allclose(one, m.sample(5, generator=torch.Generator().manual_seed(0)), atol=1e-6)
    m.config.arch_options.truncation_cutoff = 2  # the fine layers keep their own w: the images differ again
    cut = m.sample(5, generator=torch.Generator().manual_seed(0), truncation=0.0)
    assert (cut - cut[:1]).abs().amax() > 1e-4


def test_noise_changes_the_image_only_where_its_scale_is_nonzero():
    g = _gan().generator.eval()
    z = torch.randn(2, 8)
    ws = g.broadcast(g.mapping(z))
    a, b = (g.draw_inputs(2, torch.Generator().manual_seed(s))["noise"] for s in (1, 2))
    assert torch.equal(g.synthesis(ws, a), g.synthesis(ws, b))  # zero scales (their init): deterministic
    with torch.no_grad():
        g.layers[2].noise.weight[[0, 3]] = torch.tensor([0.7, -1.3])  # layer 2, channels 0 and 3 only
    oa, _ = _layer_outputs(g, ws, a)
    ob, _ = _layer_outputs(g, ws, b)
    for j in range(2):
        assert torch.equal(oa[j], ob[j])
    changed = (oa[2] != ob[2]).flatten(2).any(dim=2).any(dim=0)  # per channel (AdaIN works per channel)
    assert changed.tolist() == [c in (0, 3) for c in range(oa[2].shape[1])]


def test_r1_flags_make_the_lazy_penalty_with_weight_gamma_over_2_times_k(tmp_path):
    m = _gan(r1=4.0, r1_every=3, style_mix_prob=0.0)
    assert m.objective.penalties(m.config) == []  # R1 is a regulariser's entry, after the objective's (none here)
    (p,) = m.config.penalties()
    assert (p.points, p.target, p.weight, p.every, p.step_weight) == ("real", 0.0, 2.0, 3, 6.0)
    step = STEPS.get("gan")(m)
    data = load_dataset("digits", "val")
    Trainer(step, data, TrainConfig(steps=10, batch_size=8, progress=False, n_samples=0, seed=0), tmp_path)
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1  # any batch of "real" images
    seen = []
    for i in range(4):
        d0 = copy.deepcopy(m.discriminator)
        with torch.no_grad():
            fake = m.generator(step._latent(8), **step._g_inputs(8))
        base = step.obj.d_loss(d0(x), d0(fake), step.state, step.c)
        out = step((x, None))
        seen.append("r1" in out)
        if i % 3 == 0:
            pen = gradient_penalty(d0, x, 0.0)
            assert torch.allclose(out["loss_d"], (base + 6.0 * pen).detach(), rtol=1e-5, atol=1e-6)
        else:
            assert torch.allclose(out["loss_d"], base.detach(), rtol=1e-5, atol=1e-6)
    assert seen == [True, False, False, True]


def test_r1_defaults_and_refusals():
    assert _gan().config.r1 == 10.0                                   # stylegan's default with non-saturating
    assert _gan(r1=0.0).config.r1 == 0.0                              # the user's choice wins
    assert _gan(objective="wgan-gp").config.r1 == 0.0                 # yields to the objective's own penalty
    assert _gan(objective="hinge").config.r1 == 10.0
    dc = {k: v for k, v in DIGITS.items() if k != "mapping_layers"}
    dc["arch"] = "dcgan"
    assert build_model("gan", dc).config.r1 == 0.0                    # other architectures: off unless asked
    both = build_model("gan", dict(dc, r1=1.0, objective="wgan-gp"))  # an explicit --r1 adds to the objective's GP
    assert [p.name for p in both.config.penalties()] == ["gradient_penalty", "r1"]
    with pytest.raises(DgmError, match="auto-encoder"):
        build_model("gan", dict(dc, r1=1.0, objective="ebgan"))
    with pytest.raises(DgmError, match="--r1-every"):
        build_model("gan", dict(dc, r1_every=2))


def _train(out, *extra):
    args = ["train", "gan", "--arch", "stylegan", "--data", "digits", "--batch-size", "8", "--hidden", "4",
            "--latent-dim", "8", "--mapping-layers", "2", "--no-progress", "--n-samples", "0", "--ckpt-every", "2",
            "--deterministic", "--out", str(out), *extra]
    assert main(args) == 0


def _final(run):
    ck = sorted((Path(run) / "checkpoints").glob("ckpt-*.pt"))[-1]
    return torch.load(ck, weights_only=True)


@pytest.mark.parametrize("objective,extra", [("non-saturating", []), ("wgan-gp", ["--n-critic", "1"]),
                                             ("hinge", ["--modulation", "demod", "--no-d-residual", "--mbstd"])])
def test_trains_two_steps_with_each_objective_family(tmp_path, objective, extra, capsys):
    _train(tmp_path / "r", "--objective", objective, "--steps", "2", *extra)
    ck = _final(tmp_path / "r")
    assert ck["step"] == 2 and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert ck["model"]["generator.mapping.w_avg"].abs().sum() > 0  # w_avg tracked during training


def test_resume_is_bit_exact_with_mixing_noise_and_lazy_r1(tmp_path):
    common = ["--style-mix-prob", "0.5", "--r1-every", "2"]
    _train(tmp_path / "full", *common, "--steps", "4")
    _train(tmp_path / "half", *common, "--steps", "2")
    assert main(["train", "gan", "--out", str(tmp_path / "half"), "--resume", "--steps", "4", "--no-progress"]) == 0
    a, b = _final(tmp_path / "full"), _final(tmp_path / "half")
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_figures_and_truncation_from_the_cli_and_refusals(tmp_path, capsys):
    _train(tmp_path / "s", "--steps", "1")
    for flag in ("--style-mix", "--noise-sweep"):
        assert main(["sample", str(tmp_path / "s"), flag, "--out", str(tmp_path / f"{flag}.png")]) == 0
        assert (tmp_path / f"{flag}.png").stat().st_size > 200
    assert main(["sample", str(tmp_path / "s"), "-n", "4", "--truncation", "0.5", "--out", str(tmp_path / "t.png")]) == 0
    capsys.readouterr()
    assert main(["train", "gan", "--data", "digits", "--steps", "1", "--hidden", "4", "--latent-dim", "8",
                 "--batch-size", "8", "--no-progress", "--n-samples", "0", "--out", str(tmp_path / "dc")]) == 0
    for flags, needle in ((["--style-mix"], "needs a stylegan run"), (["--noise-sweep"], "needs a stylegan run"),
                          (["--truncation", "0.5", "--truncation-mode", "w-mean"], "this run has interpolate")):
        assert main(["sample", str(tmp_path / "dc"), *flags]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err and err.count("\n") == 1, err
    for flags, needle in ((["--mapping-layers", "2"], "an option of --arch stylegan"),
                          (["--no-noise"], "an option of --arch stylegan"),
                          (["--arch", "stylegan", "--objective", "began"], "auto-encoder D"),
                          (["--arch", "stylegan", "--spectral-norm"], "equalized"),
                          (["--arch", "stylegan", "--modulation", "none"], "--no-const-input"),
                          (["--arch", "stylegan", "--modulation", "wave"], "--modulation must be")):
        assert main(["train", "gan", "--data", "digits", "--out", str(tmp_path / "x"), *flags]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(tmp_path):
    common = ["train", "gan", "--arch", "stylegan", "--data", "digits", "--steps", "2", "--batch-size", "8",
              "--hidden", "4", "--latent-dim", "8", "--mapping-layers", "2", "--style-mix-prob", "0.5", "--r1-every",
              "2", "--no-const-input", "--no-progress", "--n-samples", "0", "--device", "cpu"]
    # --no-const-input: on the constant input (all ones, as StyleGAN) with noise scales still at 0, layer 0 is spatially
    # constant, AdaIN maps it to y_b, and its bias gets a gradient that is float noise which Adam scales up to +-lr
    torchrun(common, tmp_path / "ddp")
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = _final(tmp_path / "ddp"), _final(tmp_path / "one")
    for k in a["model"]:
        # Adam moves every weight by ~lr = 2e-4 a step, so other latents / noise on one rank would show as O(1e-4);
        # float summation order leaves < 1e-5 (near-zero gradients of the lr-multiplied mapping biases amplify it)
        assert torch.allclose(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-5), k
