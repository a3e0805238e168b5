"""ALI / BiGAN (Dumoulin et al. 2017; Donahue et al. 2017): the joint discriminator sees the encoder, the encoder's
draws, the losses of the objectives registry, the CLI, and resume (test_contract.py covers the rest of the model
contract for ali, as for every model)."""
import json

import pytest
import torch
import torch.nn.functional as F

import dgm
from dgm.cli import main
from dgm.data import load_dataset
from dgm.errors import DgmError
from dgm.models import MODELS, InputError, build_model
from dgm.models.ali import draw_code, usable_objectives
from dgm.objectives import OBJECTIVES
from dgm.training import STEPS, TrainConfig, Trainer

POINTS = dict(data_kind="points", channels=2, height=1, width=1, levels=0)
DIGITS = dict(channels=1, height=8, width=8, levels=17)
TRAIN = ["--batch-size", "32", "--no-progress", "--n-samples", "0", "--ckpt-every", "1000", "--eval-every", "1000",
         "--log-every", "1"]

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _step(tmp_path, freeze_encoder=False, **opts):
    torch.manual_seed(0)
    model = build_model("ali", dict(POINTS, hidden=16, layers=1, **opts))
    if freeze_encoder:
        model.encoder.requires_grad_(False)
    step = STEPS.get("ali")(model)
    data = load_dataset("ring8", "val")
    Trainer(step, data, TrainConfig(steps=3, batch_size=32, progress=False, n_samples=0), tmp_path)
    return step, data


def _batch(data, n=32):
    return data.points[:n].float(), torch.zeros(n, dtype=torch.long)


def test_ds_loss_reaches_the_encoder_through_its_codes(tmp_path):
    step, data = _step(tmp_path)
    m = step.model
    x, _ = _batch(data)
    z, eps = step._draws(len(x))
    fake, z_hat = step.GE(z, x, eps)
    loss_d = step.d_loss(*step.D(x, z_hat, fake, z))
    grads = torch.autograd.grad(loss_d, list(m.encoder.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)  # D(x, z) reads E(x): its loss moves E
    # ... and the same D's score of the pair changes with the code alone
    assert not torch.equal(m.discriminator(x, z_hat), m.discriminator(x, z_hat + 1))


def test_a_frozen_encoder_is_unchanged_by_a_step_while_g_and_d_move(tmp_path):
    step, data = _step(tmp_path, freeze_encoder=True)
    m = step.model
    before = {k: v.clone() for k, v in m.state_dict().items()}
    step(_batch(data))
    after = m.state_dict()
    for k in before:
        moved = not torch.equal(before[k], after[k])
        assert moved != k.startswith("encoder."), k  # E fixed; every weight of G and D updated


def test_one_step_updates_d_on_detached_pairs_then_g_and_e_together(tmp_path):
    step, data = _step(tmp_path)
    m = step.model
    assert {id(p) for g in step.engine.optimizers["g"].param_groups for p in g["params"]} == \
        {id(p) for p in [*m.generator.parameters(), *m.encoder.parameters()]}
    assert {id(p) for g in step.engine.optimizers["d"].param_groups for p in g["params"]} == \
        {id(p) for p in m.discriminator.parameters()}
    out = step(_batch(data))
    assert {"loss_d", "loss_g", "acc_real", "acc_fake", "d_real", "d_fake"} <= set(out)
    assert 0 <= float(out["acc_real"]) <= 1 and 0 <= float(out["acc_fake"]) <= 1
    assert step.steps == 1


def test_the_stochastic_encoder_draws_from_its_gaussian():
    mu, logvar = torch.tensor([[0.5, -2.0]]), torch.tensor([[0.0, 2 * torch.log(torch.tensor(0.3)).item()]])
    n = 200_000
    z = draw_code(mu.expand(n, 2), logvar.expand(n, 2), torch.Generator().manual_seed(0))
    se = torch.tensor([1.0, 0.3]) / n ** 0.5
    assert (z.mean(0) - mu[0]).abs().le(5 * se).all(), z.mean(0)
    # the variance: se of a sample variance of a Gaussian is sigma^2 sqrt(2 / n)
    assert (z.var(0) - torch.tensor([1.0, 0.09])).abs().le(5 * torch.tensor([1.0, 0.09]) * (2 / n) ** 0.5).all()
    # the model's own draws: E's mean and variance for a fixed x
    torch.manual_seed(0)
    m = build_model("ali", dict(POINTS, hidden=8, layers=1)).eval()
    x = torch.tensor([[0.3, -0.7]])
    mu, logvar = m.encode(x)
    draws = torch.stack([m.encode_sample(x, torch.Generator().manual_seed(i))[0] for i in range(2000)])
    sd = (0.5 * logvar[0]).exp()
    assert ((draws.mean(0) - mu[0]).abs() <= 5 * sd / 2000 ** 0.5).all()
    assert ((draws.var(0) / sd ** 2 - 1).abs() <= 5 * (2 / 2000) ** 0.5).all()


def test_the_deterministic_encoder_and_the_uniform_latent():
    torch.manual_seed(0)
    m = build_model("ali", dict(POINTS, hidden=8, layers=1, encoder="deterministic", latent="uniform")).eval()
    x = torch.randn(5, 2)
    code, logvar = m.encode(x)
    assert logvar is None and torch.equal(code, m.encode_sample(x)) and code.shape == (5, 2)
    z = m.sample_latent(10_000, torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1 and abs(float(z.mean())) < 0.03
    assert "gaussian-latent" not in m.abilities and "reconstruct" in m.abilities
    with pytest.raises(DgmError, match="Gaussian"):
        m.sample(2, truncation=0.5)


@pytest.mark.parametrize("name", ["minimax", "non-saturating", "hinge", "lsgan"])
def test_the_losses_are_the_objectives_formulas_on_known_outputs(tmp_path, name):
    step, _ = _step(tmp_path, objective=name)
    r, f = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-0.5, 1.5, 0.0])
    sp = F.softplus
    d = {"minimax": sp(-r).mean() + sp(f).mean(), "non-saturating": sp(-r).mean() + sp(f).mean(),
         "hinge": F.relu(1 - r).mean() + F.relu(1 + f).mean(), "lsgan": ((r - 1) ** 2).mean() + (f ** 2).mean()}
    # G and E: G's term on the generator pairs, E's mirror on the encoder pairs
    ge = {"minimax": -sp(f).mean() - sp(-r).mean(),  # exactly -V(D, G, E) (Dumoulin et al. 2017, eq. 1)
          "non-saturating": sp(-f).mean() + sp(r).mean(),  # -log D(G(z), z) - log(1 - D(x, E(x)))
          "hinge": -f.mean() + r.mean(), "lsgan": ((f - 1) ** 2).mean() + (r ** 2).mean()}
    assert step.d_loss(r, f).item() == pytest.approx(d[name].item(), rel=1e-6)
    assert step.ge_loss(r, f).item() == pytest.approx(ge[name].item(), rel=1e-6)
    if name == "minimax":
        assert step.ge_loss(r, f).item() == pytest.approx(-step.d_loss(r, f).item(), rel=1e-6)


def test_objectives_ali_cannot_play_are_refused_in_one_line():
    assert set(usable_objectives()) == {"minimax", "non-saturating", "hinge", "lsgan"}
    for name in OBJECTIVES.names():
        if name in usable_objectives():
            continue
        with pytest.raises(DgmError, match="ali cannot use objective") as e:
            build_model("ali", dict(POINTS, objective=name))
        assert "\n" not in str(e.value) and "non-saturating" in str(e.value)


def test_encode_refuses_data_of_another_shape_or_scale():
    torch.manual_seed(0)
    m = build_model("ali", dict(DIGITS, hidden=8, layers=1, latent_dim=3)).eval()
    assert m.encode(torch.zeros(2, 1, 8, 8))[0].shape == (2, 3)
    for bad in (torch.zeros(2, 1, 9, 9), torch.full((2, 1, 8, 8), 16.0), torch.full((2, 1, 8, 8), float("nan"))):
        with pytest.raises(InputError):
            m.encode(bad)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert m.reconstruct(x).shape == x.shape and m.reconstruct(x).abs().max() <= 1


def test_image_defaults_are_alis_dropout_in_d_and_batch_norm_in_g_and_e():
    m = build_model("ali", dict(DIGITS))
    c = m.config
    assert (c.arch, c.norm, c.d_dropout, c.latent_dim, c.hidden) == ("mlp", "batch", 0.2, 64, 256)
    assert any(isinstance(x, torch.nn.BatchNorm1d) for x in m.generator.modules())
    assert any(isinstance(x, torch.nn.BatchNorm1d) for x in m.encoder.modules())
    assert any(isinstance(x, torch.nn.Dropout) and x.p == 0.2 for x in m.discriminator.modules())
    p = build_model("ali", dict(POINTS)).config
    assert (p.norm, p.d_dropout, p.latent_dim) == ("none", 0.0, 2)
    for bad, match in ((dict(arch="conv", norm="batch", height=28, width=28), "--norm batch"),
                       (dict(d_dropout=1.0), "--d-dropout"), (dict(norm="layer"), "--norm")):
        with pytest.raises(DgmError, match=match):
            build_model("ali", dict(DIGITS, **bad))


def test_conv_nets_for_images():
    torch.manual_seed(0)
    m = build_model("ali", dict(channels=1, height=28, width=28, levels=2, hidden=4, latent_dim=5))
    assert m.config.arch == "conv"
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    assert m.sample(3).shape == (3, 1, 28, 28) and m.encode(x)[0].shape == (3, 5)
    assert m.discriminator(x, torch.randn(3, 5)).shape == (3,)
    with pytest.raises(DgmError, match="--arch conv needs image data"):
        build_model("ali", dict(POINTS, arch="conv"))


def test_cli_train_sample_eval_on_the_ring(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ali", "--data", "ring8", "--steps", "3", "--out", str(run), *TRAIN]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) == 3 and {"loss_d", "loss_g", "acc_real", "acc_fake"} <= set(train[0])
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "50", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
    assert main(["sample", str(run), "--figure", "reconstructions", "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").is_file()  # test points joined to G(E(x)) over the density
    capsys.readouterr()
    assert main(["eval", str(run), "--metric", "modes"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_modes"] == 8 and out["n_samples"] == 2500
    model = dgm.load(run)
    assert type(model) is MODELS.get("ali") and model.sample(4).shape == (4, 2)
    assert main(["train", "ali", "--data", "ring8", "--objective", "wgan-gp", "--steps", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_reconstructions_figure_on_digits(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ali", "--data", "digits", "--steps", "2", "--hidden", "16", "--latent-dim", "2",
                 "--out", str(run), *TRAIN]) == 0
    capsys.readouterr()
    for figure in ("reconstructions", "plots", "interpolate"):
        assert main(["sample", str(run), "--figure", figure]) == 0, figure
    printed = capsys.readouterr().out.split()
    assert any(p.endswith("reconstructions-seed0.png") for p in printed)
    assert any(p.endswith("manifold.png") for p in printed)  # a 2-D Gaussian latent: the decoded manifold


@pytest.mark.slow
def test_ali_covers_the_ring_and_inverts_g_after_training(tmp_path, capsys):
    """A longer run on ring8: most modes covered, and G(E(x)) lands near x (the encoder learned G's inverse)."""
    run = tmp_path / "run"
    assert main(["train", "ali", "--data", "ring8", "--steps", "3000", "--hidden", "128", "--batch-size", "128",
                 "--out", str(run), "--no-progress", "--n-samples", "0", "--eval-every", "100000"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--metric", "modes"]) == 0
    assert json.loads(capsys.readouterr().out)["modes"] >= 6
    m = dgm.load(run)
    x = load_dataset("ring8", "test").points[:500].float()
    err = (m.reconstruct(x) - x).norm(dim=1)
    assert float(err.median()) < 0.5  # modes are 0.77 apart on the unit ring: most x come back to their own mode


@pytest.mark.slow  # multi-process
def test_ddp_two_processes_equal_one_process_on_the_union_batch(tmp_path):
    """On points (no batch norm, no dropout): z and eps are drawn for the global batch and each process takes its
    rows, so 2 processes equal 1 on the union batch."""
    from conftest import torchrun
    from dgm import checkpoint as ckpt

    common = ["train", "ali", "--data", "ring8", "--batch-size", "16", "--steps", "3", "--n-samples", "0",
              "--no-progress", "--device", "cpu", "--eval-every", "1000", "--hidden", "8", "--layers", "1"]
    torchrun(common, tmp_path / "ddp")
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("ddp", "one"))
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
