"""GAN parts are registered: architectures (GAN_ARCHS), objective hooks, the penalty list, the optimizer table."""
import copy
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import dgm
from dgm.cli import main
from dgm.data import load_dataset
from dgm.models import build_model
from dgm.models.gan import GANConfig
from dgm.models.gan_nets import GAN_ARCHS, AutoencoderDiscriminator, Discriminator, GANArch, discriminator
from dgm.objectives import OBJECTIVES, Penalty, began_update, fgan_bound, gradient_penalty, pulling_away, r1
from dgm.training import STEPS, TrainConfig, Trainer
from dgm.training.optim import OPTIMIZERS, differentiable_step, make_optimizer

POINTS = dict(channels=2, height=1, width=1, levels=0, data_kind="points")
SMALL = ["--data", "ring8", "--batch-size", "16", "--hidden", "8", "--layers", "1", "--no-progress",
         "--n-samples", "0"]


# -- architectures ------------------------------------------------------------------------------------------


class _ToyGenerator(nn.Module):
    def __init__(self, latent, dim):
        super().__init__()
        self.net = nn.Linear(latent, dim)

    def forward(self, z):
        return self.net(z)


def _build_toy(c, energy):
    dim = c.channels * c.height * c.width
    g = _ToyGenerator(c.latent_dim, dim)
    return g, discriminator(energy, lambda: nn.Linear(dim, 1),
                            lambda: (nn.Linear(dim, 2), nn.Linear(2, dim)))


@pytest.fixture
def toy_arch():
    """An architecture registered by a test only: nothing else in the library names it."""
    GAN_ARCHS.add("toy-test", GANArch(_build_toy, data_kinds=("points",), hidden=4), "a linear G and D")
    yield "toy-test"
    GAN_ARCHS._items.pop("toy-test")
    GAN_ARCHS._help.pop("toy-test")


@pytest.mark.parametrize("objective", ["non-saturating", "began"])
def test_a_registered_architecture_trains_from_the_cli_without_other_edits(tmp_path, toy_arch, objective, capsys):
    out = tmp_path / "run"
    assert main(["train", "gan", "--arch", toy_arch, "--objective", objective, "--steps", "2", *SMALL,
                 "--out", str(out)]) == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())["model_config"]
    assert cfg["arch"] == toy_arch
    m = dgm.load(str(out))
    assert isinstance(m.generator, _ToyGenerator)
    # the objective, not the architecture, decides whether D is an auto-encoder, and with which loss
    want = AutoencoderDiscriminator if objective == "began" else Discriminator
    assert isinstance(m.discriminator, want)
    assert m.sample(5).shape == (5, 2)
    assert main(["list", "archs"]) == 0
    assert toy_arch in capsys.readouterr().out


def test_the_architecture_table_and_its_errors(tmp_path, capsys):
    assert {"mlp", "dcgan"} <= set(GAN_ARCHS.names())
    assert main(["list", "archs"]) == 0
    listed = capsys.readouterr().out
    assert "mlp" in listed and "dcgan" in listed
    assert main(["train", "gan", "--arch", "dcgn", "--data", "digits", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "'dcgan'" in err and "dgm list archs" in err and len(err.strip().splitlines()) == 1
    # the arch's declared defaults resolve the config: hidden, and batch norm in DCGAN's D unless regularised
    assert GANConfig(arch="mlp", **POINTS).hidden == 256
    img = dict(channels=1, height=8, width=8, levels=17)
    assert GANConfig(**img).arch == "dcgan" and GANConfig(**img).hidden == 32
    assert GANConfig(**img).d_norm == "batch"
    assert GANConfig(objective="wgan-gp", **img).d_norm == "none"
    assert GANConfig(objective="began", **img).d_norm == "none"
    assert GANConfig(spectral_norm=True, **img).d_norm == "none"


@pytest.mark.parametrize("objective,loss", [("ebgan", "mse"), ("began", "l1"), ("non-saturating", None)])
def test_the_objective_declares_the_energy_discriminator(objective, loss):
    m = build_model("gan", dict(POINTS, objective=objective, hidden=16, layers=1))
    if loss is None:
        assert isinstance(m.discriminator, Discriminator)
    else:
        assert isinstance(m.discriminator, AutoencoderDiscriminator) and m.discriminator.loss == loss


def test_sampling_runs_g_in_eval_mode_and_restores_its_mode():
    m = build_model("gan", dict(channels=1, height=8, width=8, levels=17, hidden=8, latent_dim=4))
    m.train()
    z = torch.randn(3, 4)
    a = m.sample(3, z=z)
    m.generator.eval()
    assert torch.equal(a, m.generator(z).detach())  # batch norm on running statistics
    m.generator.train()
    m.sample(3, z=z)
    assert m.generator.training


# -- objective hooks ----------------------------------------------------------------------------------------


def _cfg(**kw):
    return GANConfig(**POINTS, **kw)


def _same(t):
    return t


def test_every_objective_declares_its_options_in_a_dataclass_the_config_composes():
    common = set(GANConfig.__dataclass_fields__)
    for name in OBJECTIVES.names():
        obj = OBJECTIVES.get(name)
        assert dataclasses.is_dataclass(obj.Options) and not set(obj.options) & common, name
        assert {f for _, f in obj.d_options + obj.g_options} <= set(obj.options), name
        assert obj.kind != "energy" or obj.reconstruction in ("mse", "l1"), name
        c = _cfg(objective=name)
        assert type(c.objective_options) is obj.Options and c.to_dict()["objective_options"] == {
            k: getattr(obj.Options(), k) for k in obj.options}, name


def test_began_hooks_carry_k_through_d_loss_and_after_d():
    obj, c = OBJECTIVES.get("began"), _cfg(objective="began", gamma=0.5, lambda_k=0.01)
    state = obj.init_state()
    assert state == {"k": 0.0}
    l_real, l_fake = torch.tensor([0.4, 0.4]), torch.tensor([0.1, 0.1])
    state["k"] = 0.5
    assert float(obj.d_loss(l_real, l_fake, state, c)) == pytest.approx(0.4 - 0.5 * 0.1)
    logs = obj.after_d(l_real, l_fake, state, c, _same)
    k, conv = began_update(0.5, 0.4, 0.1, 0.5, 0.01)
    assert state["k"] == pytest.approx(k) and float(logs["k"]) == pytest.approx(k)
    assert float(logs["convergence"]) == pytest.approx(conv)
    # the step's cross-process mean is what k_t sees
    obj.after_d(l_real, l_fake, state, c, lambda t: t * 0 + torch.tensor([0.2, 0.3]))
    assert state["k"] == pytest.approx(began_update(k, 0.2, 0.3, 0.5, 0.01)[0])


def test_ebgan_pulling_away_term_is_its_g_extra():
    obj = OBJECTIVES.get("ebgan")
    e_fake, code = torch.tensor([0.3, 0.7]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    c = _cfg(objective="ebgan", pt_weight=0.25)
    assert float(obj.g_loss(e_fake, code, c)) == pytest.approx(0.5 + 0.25 * float(pulling_away(code)))
    assert float(obj.g_loss(e_fake, None, c)) == pytest.approx(0.5)  # unrolled copies: no code, no term
    assert float(obj.g_loss(e_fake, code, _cfg(objective="ebgan", pt_weight=0.0))) == pytest.approx(0.5)


def test_wgan_and_f_gan_log_their_estimates_and_others_log_nothing():
    r, f = torch.tensor([2.0, 1.0]), torch.tensor([0.5, -0.5])
    for name in ("wgan", "wgan-gp"):
        logs = OBJECTIVES.get(name).after_d(r, f, {}, _cfg(objective=name), _same)
        assert float(logs["wasserstein_estimate"]) == pytest.approx(1.5)
    c = _cfg(objective="f-gan", divergence="kl")
    logs = OBJECTIVES.get("f-gan").after_d(r, f, {}, c, _same)
    assert float(logs["divergence_bound"]) == float(fgan_bound(r, f, "kl"))
    for name in ("minimax", "non-saturating", "hinge", "lsgan", "ebgan"):
        obj = OBJECTIVES.get(name)
        assert obj.after_d(r, f, {}, _cfg(objective=name), _same) == {} and obj.init_state() == {}


def test_the_gan_step_never_names_an_objective():
    src = (Path(dgm.__file__).parent / "training" / "gan_step.py").read_text()
    for name in OBJECTIVES.names():
        assert not re.search(rf"""["']{re.escape(name)}["']""", src), name


def test_old_family_state_loads(tmp_path):
    step, _ = _step(tmp_path, "non-saturating")
    step.load_state_dict({"k": 0.0, "d_steps": 3, "last": {"loss_g": 1.0}})  # every GAN checkpoint before hooks
    assert step.state == {} and step.d_steps == 3 and step.state_dict() == {"d_steps": 3, "last": {"loss_g": 1.0}}
    step, _ = _step(tmp_path / "b", "began")
    step.load_state_dict({"k": 0.25, "d_steps": 3, "last": {}})
    assert step.state == {"k": 0.25} and step.state_dict()["k"] == 0.25


# -- penalties ----------------------------------------------------------------------------------------------


def _critic():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1)).double()


def test_r1_equals_gamma_over_2_times_the_squared_gradient_norm_on_reals():
    f = _critic()
    x, fake = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    p = r1(gamma=4.0)
    assert (p.points, p.target, p.weight, p.every) == ("real", 0.0, 2.0, 1)
    pts = p.sample(x, fake)
    assert torch.equal(pts, x)
    value = p.step_weight * gradient_penalty(lambda v: f(v).squeeze(1), pts, p.target)
    h, sq = 1e-6, []
    for i in range(6):
        g = []
        for j in range(3):
            e = torch.zeros(3, dtype=torch.float64)
            e[j] = h
            g.append((f(x[i] + e) - f(x[i] - e)).item() / (2 * h))
        sq.append(np.sum(np.square(g)))
    assert value.item() == pytest.approx(4.0 / 2 * np.mean(sq), rel=1e-6)


def test_objective_penalties_are_entries():
    assert OBJECTIVES.get("non-saturating").penalties(_cfg()) == []
    (p,) = OBJECTIVES.get("wgan-gp").penalties(_cfg(objective="wgan-gp", gp_weight=3.0))
    assert (p.points, p.target, p.weight, p.every, p.name) == ("interpolates", 1.0, 3.0, 1, "gradient_penalty")
    (p,) = OBJECTIVES.get("dragan").penalties(_cfg(objective="dragan", dragan_c=0.2))
    assert (p.points, p.target, p.weight, p.scale) == ("perturbed", 1.0, 10.0, 0.2)
    with pytest.raises(ValueError):
        Penalty("nowhere")
    with pytest.raises(ValueError):
        Penalty("real", every=0)


def _step(tmp_path, objective, **opts):
    torch.manual_seed(0)
    model = build_model("gan", dict(POINTS, objective=objective, hidden=16, layers=1, **opts))
    step = STEPS.get("gan")(model)
    data = load_dataset("ring8", "val")
    Trainer(step, data, TrainConfig(steps=10, batch_size=16, progress=False, n_samples=0), tmp_path)
    return step, data


def test_lazy_regularisation_applies_every_k_updates_with_weight_times_k(tmp_path):
    step, data = _step(tmp_path, "non-saturating")
    step.penalties = [Penalty("real", target=0.0, weight=2.0, every=3, name="r1")]
    m, obj, c = step.model, step.obj, step.c
    x = data.points[:16]
    seen = []
    for i in range(7):
        d0 = copy.deepcopy(m.discriminator)
        with torch.no_grad():
            fake = m.generator(step._latent(16))
        base = obj.d_loss(d0(x), d0(fake), step.state, c)
        out = step((x, None))
        seen.append("r1" in out)
        if i % 3 == 0:
            pen = gradient_penalty(d0, x, 0.0)
            assert torch.allclose(out["r1"], pen.detach())
            assert torch.allclose(out["loss_d"], (base + 6.0 * pen).detach(), rtol=1e-6, atol=1e-7)
        else:
            assert torch.allclose(out["loss_d"], base.detach(), rtol=1e-6, atol=1e-7)
    assert seen == [True, False, False, True, False, False, True]


# -- the optimizer table ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_each_optimizer_rule_is_its_optimizers_step(kind):
    torch.manual_seed(0)
    p = nn.Parameter(torch.randn(5, dtype=torch.float64))
    opt = make_optimizer(kind, [p], lr=0.1, betas=(0.5, 0.9))
    assert type(opt) is OPTIMIZERS[kind].cls
    for _ in range(2):  # give the optimizer state first
        opt.zero_grad()
        (p ** 2).sum().backward()
        opt.step()
    g = torch.randn(5, dtype=torch.float64)
    st = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in opt.state[p].items()}
    want = differentiable_step(opt, opt.param_groups[0], p.detach(), g, st)
    p.grad = g.clone()
    opt.step()
    assert torch.allclose(want, p.detach(), rtol=1e-9, atol=1e-9)


def test_the_engine_and_the_config_use_the_one_table():
    from dgm.training import config

    assert config.OPTIMIZERS is OPTIMIZERS
    assert set(OPTIMIZERS) == {"adam", "adamw", "sgd", "rmsprop"}
