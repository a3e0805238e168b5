"""VAE/GAN (Larsen et al. 2016): the losses equal their formulas, each network receives exactly the gradient of its
own loss (the paper's update split), the CLI, and DDP (test_contract.py covers resume and the rest of the model
contract for vae-gan, as for every model)."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

import dgm
from dgm.cli import main
from dgm.data import load_dataset
from dgm.errors import DgmError
from dgm.models import MODELS, build_model
from dgm.objectives.vae_gan import feature_nll, vae_gan_d_loss, vae_gan_g_loss
from dgm.training import STEPS, TrainConfig, Trainer

DIGITS = dict(channels=1, height=8, width=8, levels=17)
TRAIN = ["--batch-size", "32", "--no-progress", "--n-samples", "0", "--ckpt-every", "1000", "--eval-every", "1000",
         "--log-every", "1", "--hidden", "16", "--latent-dim", "2"]

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_feature_reconstruction_term_is_the_gaussian_nll_of_the_features():
    f_x = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]])
    f_rec = torch.tensor([[0.0, 0.0, 0.0], [0.5, 1.0, -1.0]])
    const = 1.5 * math.log(2 * math.pi)  # d/2 log(2 pi), d = 3
    expect = torch.tensor([0.5 * (1 + 4) + const, 0.5 * (0 + 4 + 9) + const])
    torch.testing.assert_close(feature_nll(f_x, f_rec), expect)
    normal = torch.distributions.Normal(f_rec, 1.0)  # -log N(f_x | f_rec, I), summed over features
    torch.testing.assert_close(feature_nll(f_x, f_rec), -normal.log_prob(f_x).sum(1))
    # conv feature maps are flattened: (B, C, H, W) as (B, C*H*W)
    maps = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    torch.testing.assert_close(feature_nll(*maps), feature_nll(maps[0].flatten(1), maps[1].flatten(1)))


def test_gan_terms_equal_their_formulas_on_known_logits():
    d_real, d_rec, d_prior = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0]), torch.tensor([1.0, 0.0])
    s = torch.sigmoid
    l_gan = (s(d_real).log().mean() + (1 - s(d_rec)).log().mean() + (1 - s(d_prior)).log().mean())
    torch.testing.assert_close(vae_gan_d_loss(d_real, d_rec, d_prior), -l_gan)  # D maximises L_GAN
    torch.testing.assert_close(vae_gan_g_loss(d_rec, d_prior), -(s(d_rec).log().mean() + s(d_prior).log().mean()))


def _step(tmp_path, **opts):
    torch.manual_seed(0)
    model = build_model("vae-gan", dict(DIGITS, hidden=16, layers=2, latent_dim=3, **opts))
    step = STEPS.get("vae-gan")(model)
    data = load_dataset("digits", "val", scale="pm1")
    Trainer(step, data, TrainConfig(steps=1, batch_size=16, progress=False, n_samples=0), tmp_path)
    return step, data


def _grads(loss, params):
    return [torch.zeros_like(p) if g is None else g
            for p, g in zip(params, torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))]


def test_each_network_gets_exactly_the_gradient_of_its_own_loss(tmp_path):
    """Algorithm 1 of the paper: Enc <- grad(L_prior + L_llike), Dec <- grad(gamma L_llike - L_GAN), Dis <- grad(-L_GAN).
    The step's single summed loss must give each network that gradient, computed here independently with a plain
    forward in which everything is live (where e.g. the GAN terms do reach the encoder)."""
    step, data = _step(tmp_path, gamma=0.3)
    m = step.model
    x = data.tensors()[0][:16].float()
    z_p, eps = torch.randn(16, 3), torch.randn(16, 3)
    t = step.losses(x, z_p, eps)
    total = t["encoder"] + t["decoder"] + t["discriminator"]
    enc, dec, dis = (list(n.parameters()) for n in (m.encoder, m.decoder, m.discriminator))

    # the independent reference: one plain forward
    mu, logvar = m.encoder_params(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    x_rec, x_p = m.decoder(z), m.decoder(z_p)
    (l_real, f_x), (l_rec, f_rec), (l_p, _) = m.discriminator(x), m.discriminator(x_rec), m.discriminator(x_p)
    kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
    llike = (0.5 * (f_x - f_rec).pow(2).sum(1) + 8 * math.log(2 * math.pi)).mean()  # 16 features
    gan = F.logsigmoid(l_real).mean() + F.logsigmoid(-l_rec).mean() + F.logsigmoid(-l_p).mean()  # L_GAN
    g_gan = -(F.logsigmoid(l_rec).mean() + F.logsigmoid(l_p).mean())  # the decoder's non-saturating -L_GAN
    torch.testing.assert_close(t["kl"], kl)
    torch.testing.assert_close(t["llike"], llike)
    torch.testing.assert_close(t["discriminator"], -gan)
    for got, want in ((_grads(total, enc), _grads(kl + llike, enc)),
                      (_grads(total, dec), _grads(0.3 * llike + g_gan, dec)),
                      (_grads(total, dis), _grads(-gan, dis))):
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    # what the split withholds is really there in a plain forward: the GAN loss would move the encoder, L_llike D
    assert any(g.abs().sum() > 0 for g in _grads(g_gan, enc))
    assert any(g.abs().sum() > 0 for g in _grads(llike, dis))
    # and each of the step's three losses reaches its own network only
    for name, own in (("encoder", enc), ("decoder", dec), ("discriminator", dis)):
        for other in (enc, dec, dis):
            moved = any(g.abs().sum() > 0 for g in _grads(t[name], other))
            assert moved == (other is own), name


def test_a_step_updates_all_three_networks_and_logs_the_bound(tmp_path):
    step, data = _step(tmp_path)
    m = step.model
    before = {k: v.clone() for k, v in m.state_dict().items()}
    out = step((data.tensors()[0][:16].float(), torch.zeros(16, dtype=torch.long)))
    assert all(not torch.equal(before[k], v) for k, v in m.state_dict().items())
    torch.testing.assert_close(out["neg_elbo_features"], out["kl_nats"] + out["llike_nats"])
    assert step.steps == 1 and 0 <= float(out["acc_real"]) <= 1


def test_cli_train_eval_sample_and_latent_tools(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "vae-gan", "--data", "digits", "--steps", "3", "--gamma", "0.5", "--out", str(run),
                 *TRAIN]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) == 3 and {"neg_elbo_features", "kl_nats", "llike_nats", "loss_d", "loss_g"} <= set(train[0])
    val = [r for r in rows if r["split"] == "val"]
    assert val and val[-1]["neg_elbo_features"] == pytest.approx(val[-1]["kl_nats"] + val[-1]["llike_nats"])
    capsys.readouterr()
    assert main(["eval", str(run), "--metric", "fid,pr", "-n", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fid"] > 0 and 0 <= out["precision"] <= 1 and out["n_fake"] == 50
    for figure in ("reconstructions", "interpolate", "plots"):
        assert main(["sample", str(run), "--figure", figure]) == 0, figure
    model = dgm.load(run)
    assert type(model) is MODELS.get("vae-gan") and model.config.gamma == 0.5
    x = load_dataset("digits", "test", scale="pm1").tensors()[0][:4].float()
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, 2)
    assert model.reconstruct(x).shape == (4, 1, 8, 8) and model.sample(3).abs().max() <= 1
    capsys.readouterr()
    for args, msg in ((["--feature-layer", "3"], "--feature-layer must be in 1..2"),
                      (["--gamma", "-1"], "--gamma must be >= 0"),
                      (["--data", "ring8"], "vae-gan needs image data")):
        argv = ["train", "vae-gan", "--data", "digits", "--layers", "2", "--steps", "1", "--out", str(tmp_path / "x"),
                *args]
        assert main(argv) == 2, args
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (args, err)


def test_conv_nets_and_the_feature_layer():
    m = build_model("vae-gan", dict(channels=1, height=28, width=28, levels=256, hidden=4, latent_dim=3,
                                    feature_layer=1))
    assert m.config.arch == "conv"
    logits, f = m.discriminator(torch.zeros(2, 1, 28, 28))
    assert logits.shape == (2,) and f.shape == (2, 4, 14, 14)  # the first stride-2 block's map
    assert m.sample(2).shape == (2, 1, 28, 28)
    with pytest.raises(DgmError, match="--feature-layer must be in 1..2"):
        build_model("vae-gan", dict(channels=1, height=28, width=28, levels=256, feature_layer=3))


@pytest.mark.slow  # multi-process
def test_ddp_two_processes_equal_one_process_on_the_union_batch(tmp_path):
    """No batch norm, no dropout, and z_p and the encoder noise drawn for the global batch: 2 processes equal 1."""
    from conftest import torchrun
    from dgm import checkpoint as ckpt

    common = ["train", "vae-gan", "--data", "digits", "--batch-size", "16", "--steps", "3", "--n-samples", "0",
              "--no-progress", "--device", "cpu", "--eval-every", "1000", "--hidden", "8", "--layers", "1",
              "--latent-dim", "2"]
    torchrun(common, tmp_path / "ddp")
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("ddp", "one"))
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
