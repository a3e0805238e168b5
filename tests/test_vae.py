"""VAE family: analytic KL, the IWAE bound (exact on a linear-Gaussian model) (pixel likelihoods: test_pixels.py),
training, resume and DDP through the shared engine, `dgm eval --metric nll` with k importance samples."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch

import dgm
from dgm.cli import main
from dgm.objectives.elbo import gaussian_kl, iwae_log_prob, log_normal, log_std_normal, reparameterize

from conftest import ROOT
from test_engine import _assert_same_state, _final_state

VAE_TINY = ["--hidden", "32", "--latent-dim", "4"]


def test_analytic_kl_equals_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 4, generator=g, dtype=torch.float64)
    logvar = torch.randn(3, 4, generator=g, dtype=torch.float64)
    z = reparameterize(mu, logvar, k=200_000, generator=g)               # (k, 3, 4)
    terms = log_normal(z, mu, logvar) - log_std_normal(z)                 # log q - log p, (k, 3)
    mc, se = terms.mean(0), terms.std(0) / math.sqrt(len(terms))
    exact = gaussian_kl(mu, logvar)
    assert torch.all((mc - exact).abs() < 4 * se), (mc, exact, se)
    assert torch.all(exact > 0) and gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0


def _linear_gaussian(dx=5, dz=3, sigma=0.5, seed=0):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, sigma^2 I) with orthogonal columns of W, so that the exact posterior is a
    diagonal Gaussian: cov = (I + W^T W / sigma^2)^-1, mean = cov W^T (x - b) / sigma^2; log p(x) = N(x; b, WW^T +
    sigma^2 I)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dx, dz, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)[:dz]
    b = torch.randn(dx, generator=g, dtype=torch.float64)
    x = torch.randn(6, dx, generator=g, dtype=torch.float64) * 2
    cov = w @ w.T + sigma ** 2 * torch.eye(dx, dtype=torch.float64)
    log_px = torch.distributions.MultivariateNormal(b, cov).log_prob(x)
    post_var = 1.0 / (1.0 + (w ** 2).sum(0) / sigma ** 2)                # diagonal because W^T W is diagonal
    post_mu = (x - b) @ w * post_var / sigma ** 2
    logvar_x = torch.full((dx,), 2 * math.log(sigma), dtype=torch.float64)

    def log_lik(z):
        return log_normal(x, z @ w.T + b, logvar_x)

    return x, log_px, post_mu, post_var.log().expand_as(post_mu), log_lik


def test_iwae_is_exact_with_the_true_posterior():
    _, log_px, mu, logvar, log_lik = _linear_gaussian()
    g = torch.Generator().manual_seed(1)
    for k in (1, 7):  # every importance weight equals p(x): any k gives log p(x) exactly
        torch.testing.assert_close(iwae_log_prob(mu, logvar, log_lik, k, generator=g), log_px, rtol=0, atol=1e-10)


def test_iwae_converges_to_log_px_and_tightens_with_k():
    _, log_px, mu, logvar, log_lik = _linear_gaussian()
    q_mu, q_logvar = mu + 0.8 * (0.5 * logvar).exp(), logvar + 0.8      # a poor q: shifted and too wide
    g = torch.Generator().manual_seed(2)
    means = {}
    for k, reps in ((1, 400), (10, 200), (100, 50)):
        est = torch.stack([iwae_log_prob(q_mu, q_logvar, log_lik, k, generator=g) for _ in range(reps)])
        means[k] = est.mean().item()
    big = iwae_log_prob(q_mu, q_logvar, log_lik, 20_000, chunk=999, generator=g)  # chunks combined by log-sum-exp
    gap = (log_px - big).abs().max().item()
    assert means[1] < means[10] < means[100] < log_px.mean().item()
    assert gap < 0.02, gap
    # the k = 1 estimate is the ELBO: its mean is log p(x) - KL(q || posterior)
    kl = (0.5 * (logvar - q_logvar + (q_logvar.exp() + (q_mu - mu) ** 2) / logvar.exp() - 1)).sum(-1)
    assert abs(means[1] - (log_px - kl).mean().item()) < 0.1


def _tiny_vae(levels=2, **kw):
    torch.manual_seed(0)
    cfg = dict(channels=1, height=8, width=8, levels=levels, latent_dim=4, hidden=32, **kw)
    return dgm.build_model("vae", cfg).double().eval()


def test_vae_elbo_below_iwae_on_average_and_log_prob_shapes():
    model = _tiny_vae()
    x = dgm.load_dataset("digits", "test", binarize="fixed").tensors()[0][:16]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # batch means of the estimators, repeated: ELBO (analytic KL), IWAE-5, IWAE-100
        runs = {k: torch.stack([(model.elbo(x, generator=g) if k == 0 else model.log_prob(x, k=k, generator=g)).mean()
                                for _ in range(reps)]) for k, reps in ((0, 1000), (5, 1000), (100, 100))}
    mean = {k: v.mean().item() for k, v in runs.items()}
    se = {k: v.std().item() / math.sqrt(len(v)) for k, v in runs.items()}
    assert mean[0] + 3 * math.hypot(se[0], se[5]) < mean[5]
    assert mean[5] + 3 * math.hypot(se[5], se[100]) < mean[100]
    assert model.log_prob(x, k=3).shape == (16,)
    assert model.sample(5).shape == (5, 1, 8, 8) and set(model.sample(5).unique().tolist()) <= {0.0, 1.0}
    assert model.reconstruct(x[:3]).shape == (3, 1, 8, 8)


def _train(out, *extra, model="vae"):
    return main(["train", model, "--data", "digits", "--binarize", "dynamic", "--batch-size", "256", "--out", str(out),
                 "--n-samples", "4", "--no-progress", "--ckpt-every", "1000", "--log-every", "1", "--deterministic",
                 *VAE_TINY, *extra])


def test_vae_resume_equals_uninterrupted_run_bit_for_bit(tmp_path):
    """The reparameterisation noise and dynamic binarization both come from the global RNG the engine restores."""
    assert _train(tmp_path / "full", "--steps", "6", "--kl-warmup", "4", model="beta-vae") == 0
    assert _train(tmp_path / "half", "--steps", "3", "--kl-warmup", "4", model="beta-vae") == 0
    assert _train(tmp_path / "half", "--steps", "6", "--resume", model="beta-vae") == 0
    _assert_same_state(_final_state(tmp_path / "full"), _final_state(tmp_path / "half"))
    rows = [json.loads(ln) for ln in (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()]
    weights = [r["kl_weight"] for r in rows if r["split"] == "train"]
    assert weights == [0.0, 1.0, 2.0, 3.0, 4.0, 4.0]                     # beta 4, linear warm-up over 4 steps


def test_vae_cli_train_eval_and_errors(tmp_path, capsys):
    run = tmp_path / "vae"
    assert main(["train", "vae", "--data", "digits", "--steps", "3", "--batch-size", "64", "--out", str(run),
                 "--n-samples", "4", "--no-progress", "--likelihood", "logistic", *VAE_TINY]) == 0
    out = capsys.readouterr().out
    assert "val -ELBO" in out and (run / "samples").is_dir()
    assert main(["eval", str(run), "--metric", "nll", "-k", "20", "--split", "val"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["k"] == 20 and r["n"] == 180 and r["nll_nats"] <= -r["elbo_nats"] + 1.0
    assert r["bits_per_dim"] == pytest.approx(r["nll_nats"] / (64 * math.log(2)))
    assert main(["eval", str(run), "--metric", "fid,pr", "-n", "20"]) == 0
    assert json.loads(capsys.readouterr().out)["n_fake"] == 20
    for argv, words in ((["--likelihood", "bernoulli"], "--binarize"), (["--arch", "resnet"], "--arch must be"),
                        (["--latent-dim", "0"], "--latent-dim")):
        code = main(["train", "vae", "--data", "digits", "--steps", "1", "--out", str(tmp_path / "bad"), *argv])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and words in err, err
    code = main(["eval", str(run), "--metric", "nll", "-k", "0"])
    assert code == 2 and "-k must be in 1..1,000,000" in capsys.readouterr().err


def test_vae_conv_on_28x28_images(tmp_path):
    """The convolutional encoder/decoder on 28x28 (Fashion-MNIST's size), through the model API."""
    torch.manual_seed(0)
    model = dgm.build_model("vae", dict(channels=1, height=28, width=28, levels=2, latent_dim=2))
    assert model.config.arch == "conv"
    x = (torch.rand(3, 1, 28, 28) < 0.3).float()
    assert model.log_prob(x, k=4).shape == (3,) and model.sample(2).shape == (2, 1, 28, 28)


@pytest.mark.slow  # multi-process (13-15 s); the default run keeps the engine's and the GAN's DDP checks
@pytest.mark.parametrize("model", ["vae", "aae", "avb"])
def test_vae_ddp_two_processes_train_through_the_shared_engine(tmp_path, model):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgm.cli",
           "train", model, "--data", "digits", "--binarize", "--batch-size", "64", "--steps", "3", "--n-samples", "0",
           "--no-progress", "--device", "cpu", *VAE_TINY, "--out", str(tmp_path / "ddp")]
    ddp = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert "2 process(es)" in ddp.stdout and "val -ELBO" in ddp.stdout
    state = _final_state(tmp_path / "ddp")
    assert state["step"] == 3 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_sample_plots_for_a_2d_latent(tmp_path, tiny_run, capsys):
    run = tmp_path / "vae2d"
    assert main(["train", "vae", "--data", "digits", "--binarize", "--steps", "2", "--batch-size", "32", "--out",
                 str(run), "--n-samples", "0", "--no-progress", "--latent-dim", "2", "--hidden", "16"]) == 0
    assert main(["sample", str(run), "-n", "4", "--plots"]) == 0
    names = {p.name for p in (run / "samples").iterdir()}
    assert {"reconstructions.png", "manifold.png", "latent-test.png", "sample-seed0.png"} <= names
    from dgm.viz.latent import manifold_images

    grid = manifold_images(dgm.load(run), n=5)
    assert grid.shape == (25, 1, 8, 8) and 0 <= grid.min() and grid.max() <= 1
    capsys.readouterr()
    code = main(["sample", str(tiny_run), "-n", "2", "--plots", "--out", str(tmp_path / "x.png")])
    assert code == 2 and "--plots needs a latent-variable model" in capsys.readouterr().err


def test_aae_resume_equals_uninterrupted_run_bit_for_bit(tmp_path):
    assert _train(tmp_path / "full", "--steps", "5", model="aae") == 0
    assert _train(tmp_path / "half", "--steps", "2", model="aae") == 0
    assert _train(tmp_path / "half", "--steps", "5", "--resume", model="aae") == 0
    a, b = _final_state(tmp_path / "full"), _final_state(tmp_path / "half")
    _assert_same_state(a, b)
    for i, st in a["optimizers"]["d"]["state"].items():                 # the discriminator's optimizer too
        assert torch.equal(st["exp_avg"], b["optimizers"]["d"]["state"][i]["exp_avg"])


@pytest.mark.slow  # multi-second; moved out of the default run to keep it under 10 minutes
def test_aae_matches_the_aggregate_posterior_to_the_prior(tmp_path):
    """The defining property: with the adversarial term, the codes of the test set look like N(0, I); without it
    (a plain autoencoder) they do not. Measured as KL(N(mean, cov) of the codes || N(0, I))."""
    x = dgm.load_dataset("digits", "test", binarize="fixed").tensors()[0]
    kl = {}
    for w in ("0", "1"):
        run = tmp_path / f"aae{w}"
        assert main(["train", "aae", "--data", "digits", "--binarize", "--steps", "150", "--batch-size", "128",
                     "--latent-dim", "2", "--hidden", "64", "--d-hidden", "64", "--adv-weight", w, "--n-samples", "0",
                     "--no-progress", "--out", str(run)]) == 0
        with torch.no_grad():
            z = dgm.load(run).elbo_terms(x, generator=torch.Generator().manual_seed(0))["z"].double()
        mu, cov = z.mean(0), torch.cov(z.T)
        kl[w] = 0.5 * (torch.trace(cov) + mu @ mu - 2 - torch.logdet(cov)).item()
    assert kl["1"] < 2.0 < 10.0 < kl["0"], kl


def test_avb_ratio_network_learns_log_q_over_p():
    """The density-ratio trick (seed 004): trained with the AVB step's logistic loss (minimax_d) on q-draws vs
    prior draws, T(x, z) approaches log q(z|x) - log p(z), here for a known q = N((0.5, -0.3), 0.6^2 I)."""
    from dgm.objectives.gan import minimax_d

    torch.manual_seed(0)
    m = dgm.build_model("avb", dict(channels=1, height=8, width=8, levels=2, latent_dim=2, t_hidden=64))
    x = dgm.load_dataset("digits", "train", binarize="fixed").tensors()[0][:128]
    mu, logvar = torch.tensor([0.5, -0.3]), torch.full((2,), 2 * math.log(0.6))
    opt = torch.optim.Adam(list(m.t_x.parameters()) + list(m.t_head.parameters()), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(600):
        zq, zp = mu + 0.6 * torch.randn(128, 2, generator=g), torch.randn(128, 2, generator=g)
        t_q, t_p = m.log_ratio(torch.cat([x, x]), torch.cat([zq, zp])).chunk(2)
        loss = minimax_d(t_q, t_p)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        z = mu + 0.6 * torch.randn(128, 2, generator=g)
        est, true = m.log_ratio(x, z), log_normal(z, mu, logvar) - log_std_normal(z)
    assert (est - true).abs().mean() < 0.2 and torch.corrcoef(torch.stack([est, true]))[0, 1] > 0.95


def test_avb_trains_resumes_and_evaluates(tmp_path, capsys):
    assert _train(tmp_path / "full", "--steps", "4", model="avb") == 0
    assert _train(tmp_path / "half", "--steps", "2", model="avb") == 0
    assert _train(tmp_path / "half", "--steps", "4", "--resume", model="avb") == 0
    a, b = _final_state(tmp_path / "full"), _final_state(tmp_path / "half")
    _assert_same_state(a, b)
    for i, st in a["optimizers"]["t"]["state"].items():
        assert torch.equal(st["exp_avg"], b["optimizers"]["t"]["state"][i]["exp_avg"])
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "half"), "--metric", "nll", "-k", "8", "--split", "val"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["k"] == 8 and "T(x, z)" in r["estimator"] and math.isfinite(r["nll_nats"])
    model = dgm.load(tmp_path / "half")
    x = dgm.load_dataset("digits", "test", binarize="fixed").tensors()[0][:4]
    assert model.sample_q(x, 3).shape == (3, 4, 4) and model.reconstruct(x).shape == (4, 1, 8, 8)
