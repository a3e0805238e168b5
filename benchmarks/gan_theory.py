"""GAN theory on 1-D toy data, in pictures and numbers (seeds 000 and 001 of the GAN issue).

(i)   The optimal discriminator D*(x) = p / (p + q) vs a discriminator trained on the minimax D loss
      (p = gmm1d, q = N(0.5, 1) fixed; 20000 random samples of each, full-batch L-BFGS).
(ii)  V(G, D*) = E_p log D* + E_q log(1 - D*) vs 2 JS(p || q) - log 4 as q = N(mu, 1) moves (exact integration),
      with the trained discriminator's Monte Carlo value on fresh samples at several mu.
(iii) WGAN-GP critic estimate E f(x) - E f(y) vs the exact W1 between gmm1d and a copy shifted by theta
      (W1 = theta grows linearly while JS saturates at log 2: seed 000's example). lambda = 10 (the paper's) and
      100; the dashed curves are the penalised objective's own optimum W1 + int w^2 / (2 lambda rho) dx
      (w = |F_p - F_q|, rho the density of the interpolates), which the critic reaches: the soft gradient penalty
      lets |f'| exceed 1 where interpolates are rare, so the estimate sits above W1 and the gap grows ~ theta^2 / lambda.
(iv)  Seed 001's vanishing gradient: |d loss / d logit| of the saturating E log(1 - D(G(z))) (= D) and the
      non-saturating -E log D(G(z)) (= 1 - D) against D(G(z)), and the generator-parameter gradient norms of a
      small G through a discriminator that gets more confident as it trains.

    python benchmarks/gan_theory.py --out benchmarks/results/gan_theory

Writes gan_theory.json and four PNGs under --out; one CPU thread; about a minute.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from scipy.special import ndtr  # noqa: E402

from dgm.data import load_dataset  # noqa: E402
from dgm.metrics.divergences import (gan_value, js_divergence, optimal_discriminator,  # noqa: E402
                                     wasserstein1_1d)
from dgm.objectives import OBJECTIVES, gradient_penalty, interpolates  # noqa: E402

LOG2, LOG4 = math.log(2.0), math.log(4.0)
GRID = np.linspace(-20.0, 30.0, 50001)
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


def mlp(width: int, dtype=torch.float64) -> nn.Sequential:
    return nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                         nn.Linear(width, 1)).to(dtype)


def log_normal(mu: float, sd: float = 1.0):
    return lambda x: -0.5 * ((np.asarray(x) - mu) / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi))


def logits_on(d: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return d(torch.as_tensor(x, dtype=torch.float64)[:, None])[:, 0].numpy()


def train_discriminator(xp: torch.Tensor, xq: torch.Tensor, width: int = 16, iters: int = 300,
                        seed: int = 0) -> nn.Module:
    """Full-batch L-BFGS on the minimax D loss -[E_p log D + E_q log(1 - D)] (logits)."""
    torch.manual_seed(seed)
    d, loss_d = mlp(width), OBJECTIVES.get("minimax").d
    opt = torch.optim.LBFGS(d.parameters(), lr=1.0, max_iter=iters, history_size=50, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = loss_d(d(xp), d(xq))
        loss.backward()
        return loss

    opt.step(closure)
    return d.eval()


def train_critic(x: torch.Tensor, y: torch.Tensor, lam: float, steps: int, seed: int) -> nn.Module:
    """WGAN-GP critic: Adam on E f(y) - E f(x) + lam E(|f'(x_hat)| - 1)^2, x_hat on random interpolates.

    The output layer starts at zero: in 1-D the penalty is a barrier at f' = 0, and a critic whose random initial
    slope has the wrong sign stays at a local optimum of the wrong sign.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    f = mlp(32, torch.float32)
    nn.init.zeros_(f[-1].weight)
    nn.init.zeros_(f[-1].bias)
    opt = torch.optim.Adam(f.parameters(), lr=2e-3, betas=(0.5, 0.9))
    critic_loss = OBJECTIVES.get("wgan-gp").d
    for _ in range(steps):
        loss = critic_loss(f(x), f(y)) + lam * gradient_penalty(f, interpolates(x, y, generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return f.eval()


def gp_optimum(means, std, theta, lam, x=None) -> float:
    """Population optimum of E_p f - E_q f under WGAN-GP, p = equal mixture N(means, std^2), q = p shifted by theta.

    1-D: E_p f - E_q f = int f' (F_q - F_p) dx, penalty lam int (|f'| - 1)^2 rho dx with rho the density of
    t x + (1 - t) y (x ~ p, y ~ q independent, t ~ U[0, 1]); since F_p >= F_q the pointwise optimum is
    |f'| = 1 + w / (2 lam rho), w = F_p - F_q, and the value is int w + w^2 / (2 lam rho) dx.
    """
    if theta == 0:
        return 0.0
    m = np.asarray(means, dtype=np.float64)
    x = np.linspace(m.min() - 6 * std, m.max() + theta + 6 * std, 3001) if x is None else x
    t = np.linspace(0.0, 1.0, 401)
    rho = np.zeros_like(x)
    for a in m:
        for b in m:
            mu = t[:, None] * a + (1 - t[:, None]) * (b + theta)
            sd = std * np.sqrt(t ** 2 + (1 - t) ** 2)[:, None]
            pdf = np.exp(-0.5 * ((x[None] - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
            rho += _trapezoid(pdf, t, axis=0) / len(m) ** 2
    cdf = lambda s: np.mean([ndtr((s - a) / std) for a in m], axis=0)  # noqa: E731
    w = cdf(x) - cdf(x - theta)
    return float(_trapezoid(w + w ** 2 / (2 * lam * rho), x))


# ---------------------------------------------------------------------------------------------------


def part_optimal_d(ds, out: Path, seed: int) -> dict:
    logp = lambda x: ds.log_prob(torch.as_tensor(np.asarray(x))[:, None]).numpy()  # noqa: E731
    mu_q = 0.5
    logq = log_normal(mu_q)
    g = torch.Generator().manual_seed(seed)
    n = 20000
    xp, xq = ds.sample(n, g)[0].double(), mu_q + torch.randn(n, 1, generator=g, dtype=torch.float64)
    d = train_discriminator(xp, xq, seed=seed)
    x = np.linspace(-6, 6, 1201)
    d_star = optimal_discriminator(logp, logq, x)
    d_hat = 1 / (1 + np.exp(-logits_on(d, x)))
    mass = 0.5 * (np.exp(logp(x)) + np.exp(logq(x)))
    where = mass > 0.01
    err = np.abs(d_hat - d_star)[where]

    fig, (a0, a1) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": [1, 1.4]})
    a0.plot(x, np.exp(logp(x)), label="p = gmm1d")
    a0.plot(x, np.exp(logq(x)), label=f"q = N({mu_q}, 1) (fixed generator)")
    a0.set_ylabel("density")
    a0.legend(fontsize=8)
    a1.plot(x, d_star, "k-", lw=2, label="D*(x) = p / (p + q)")
    a1.plot(x, d_hat, "r--", lw=1.5, label=f"trained D (L-BFGS, n={n} each)")
    a1.axvspan(x[where].min(), x[where].max(), color="0.92", zorder=0, label="(p + q)/2 > 0.01")
    a1.set_xlabel("x")
    a1.set_ylabel("D(x)")
    a1.set_title(f"max |D - D*| on the shaded region = {err.max():.3f}", fontsize=9)
    a1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "optimal_discriminator.png", dpi=120)
    plt.close(fig)
    return {"q": f"N({mu_q}, 1)", "n_train_each": n, "max_abs_err": float(err.max()), "mean_abs_err": float(err.mean()),
            "region": [float(x[where].min()), float(x[where].max())]}


def part_value_vs_js(ds, out: Path, seed: int) -> dict:
    logp = lambda x: ds.log_prob(torch.as_tensor(np.asarray(x))[:, None]).numpy()  # noqa: E731
    mus = np.linspace(-8, 8, 65)
    v_star = np.array([gan_value(logp, log_normal(m), GRID) for m in mus])
    two_js = np.array([2 * js_divergence(logp, log_normal(m), GRID) - LOG4 for m in mus])
    rows = []
    g = torch.Generator().manual_seed(seed + 1)
    for m in (-6.0, -3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 6.0):
        n = 5000
        xp, xq = ds.sample(n, g)[0].double(), m + torch.randn(n, 1, generator=g, dtype=torch.float64)
        d = train_discriminator(xp, xq, iters=200, seed=seed)
        hp, hq = ds.sample(20000, g)[0].double(), m + torch.randn(20000, 1, generator=g, dtype=torch.float64)
        with torch.no_grad():
            v_mc = -OBJECTIVES.get("minimax").d(d(hp), d(hq)).item()
        js = js_divergence(logp, log_normal(m), GRID)
        rows.append({"mu": m, "js": js, "2js_minus_log4": 2 * js - LOG4, "v_dstar_integral": gan_value(logp, log_normal(m), GRID),
                     "v_trained_mc": v_mc})

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(mus, two_js, "k-", lw=2, label="2 JS(p || q) - log 4")
    ax.plot(mus[::2], v_star[::2], "o", mfc="none", color="C0", label="V(G, D*) by numerical integration")
    ax.plot([r["mu"] for r in rows], [r["v_trained_mc"] for r in rows], "rx", ms=8, mew=2,
            label="V(G, D_trained), Monte Carlo (20000 fresh samples)")
    ax.axhline(-LOG4, color="0.5", ls=":", lw=1)
    ax.axhline(0.0, color="0.5", ls=":", lw=1)
    ax.text(-8, -LOG4 + 0.02, "-log 4 (q = p)", fontsize=8, color="0.4")
    ax.text(0, -0.05, "0 (disjoint: JS = log 2)", fontsize=8, color="0.4", ha="center")
    ax.set_xlabel("mean mu of q = N(mu, 1)    (p = gmm1d: modes at -2, 2)")
    ax.set_ylabel("V(G, D)")
    ax.legend(fontsize=8, loc="lower center")
    fig.tight_layout()
    fig.savefig(out / "value_vs_js.png", dpi=120)
    plt.close(fig)
    return {"max_abs_v_dstar_minus_2js_log4": float(np.abs(v_star - two_js).max()), "trained": rows}


def part_wasserstein(ds, out: Path, seed: int) -> dict:
    logp = lambda x: ds.log_prob(torch.as_tensor(np.asarray(x))[:, None]).numpy()  # noqa: E731
    means, std = ds.means[:, 0].tolist(), ds.std
    thetas = [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0]
    g = torch.Generator().manual_seed(seed + 2)
    n = 2048
    rows = []
    for th in thetas:
        x, y = ds.sample(n, g)[0], ds.sample(n, g)[0] + th
        xh, yh = ds.sample(20000, g)[0], ds.sample(20000, g)[0] + th
        row = {"theta": th, "w1_exact": th, "w1_samples": wasserstein1_1d(xh, yh),
               "js": js_divergence(logp, lambda s, t=th: logp(np.asarray(s) - t), GRID)}
        for lam in (10.0, 100.0):
            f = train_critic(x, y, lam, steps=600, seed=seed)
            with torch.no_grad():
                row[f"critic_lam{lam:g}"] = (f(xh).mean() - f(yh).mean()).item()
            row[f"gp_optimum_lam{lam:g}"] = gp_optimum(means, std, th, lam)
        rows.append(row)

    ths = np.linspace(0, 8, 81)
    js_curve = [js_divergence(logp, lambda s, t=t_: logp(np.asarray(s) - t), GRID) for t_ in ths]
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4.5))
    a0.plot(ths, ths, "k-", lw=2, label="exact W1 = theta")
    a0.plot(thetas, [r["w1_samples"] for r in rows], "ks", mfc="none", label="wasserstein1_1d(held-out samples)")
    for lam, c in ((10.0, "C3"), (100.0, "C0")):
        a0.plot(thetas, [r[f"critic_lam{lam:g}"] for r in rows], "o", color=c,
                label=f"WGAN-GP critic E f(x) - E f(y), lambda={lam:g}")
        fine = np.linspace(0.05, 8, 40)
        a0.plot(fine, [gp_optimum(means, std, t_, lam) for t_ in fine], "--", color=c, lw=1,
                label=f"optimum of the penalised objective, lambda={lam:g}")
    a0.set_xlabel("shift theta (q = gmm1d shifted by theta)")
    a0.set_ylabel("distance estimate")
    a0.set_title("Wasserstein-1 grows linearly with the shift", fontsize=10)
    a0.legend(fontsize=7)
    a1.plot(ths, js_curve, "C2-", lw=2, label="JS(p || p shifted by theta)")
    a1.axhline(LOG2, color="0.4", ls=":", label="log 2")
    a1.set_xlabel("shift theta")
    a1.set_ylabel("JS (nats)")
    a1.set_title("JS: flat at log 2 once the supports separate", fontsize=10)
    a1.annotate("theta = 4: the shifted copy's left mode\nlands on p's right mode", xy=(4, js_curve[40]),
                xytext=(4.3, 0.12), fontsize=8, arrowprops={"arrowstyle": "->", "color": "0.4"})
    a1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "wasserstein_vs_js.png", dpi=120)
    plt.close(fig)
    return {"rows": rows}


def part_vanishing_gradient(ds, out: Path, seed: int) -> dict:
    sat_g, ns_g = OBJECTIVES.get("minimax").g, OBJECTIVES.get("non-saturating").g
    dvals = np.logspace(-5, math.log10(1 - 1e-5), 200)
    logits = torch.tensor(np.log(dvals / (1 - dvals)), requires_grad=True)
    (gs,) = torch.autograd.grad(sat_g(logits) * len(dvals), logits)  # per-example derivative (losses are means)
    (gn,) = torch.autograd.grad(ns_g(logits) * len(dvals), logits)
    gs, gn = gs.abs().numpy(), gn.abs().numpy()

    # a small G (its samples near 0, between the modes of gmm1d) and a discriminator that trains against it
    torch.manual_seed(seed)
    gen = mlp(16)
    z = torch.randn(1024, 1, generator=torch.Generator().manual_seed(seed + 3), dtype=torch.float64)
    with torch.no_grad():
        fake = gen(z)
    real = ds.sample(1024, torch.Generator().manual_seed(seed + 4))[0].double()
    d = mlp(16)
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    params = list(gen.parameters())
    trace = []
    for step in range(1501):
        if step in (0, 5, 10, 20, 50, 100, 200, 300, 500, 750, 1000, 1500):
            logit_fake = d(gen(z))
            norm = lambda loss: torch.cat([t.flatten() for t in torch.autograd.grad(loss, params,  # noqa: E731
                                                                                     retain_graph=True)]).norm().item()
            trace.append({"d_step": step, "mean_D_fake": torch.sigmoid(logit_fake).mean().item(),
                          "grad_norm_saturating": norm(sat_g(logit_fake)),
                          "grad_norm_non_saturating": norm(ns_g(logit_fake))})
        loss = OBJECTIVES.get("minimax").d(d(real), d(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4.5))
    a0.loglog(dvals, dvals, "C3-", lw=2, label="saturating  E log(1 - D(G(z))):  |d/dl| = D")
    a0.loglog(dvals, 1 - dvals, "C0-", lw=2, label="non-saturating  -E log D(G(z)):  |d/dl| = 1 - D")
    a0.loglog(dvals[::10], gs[::10], "C3o", mfc="none", ms=5, label="autograd (dgm objectives)")
    a0.loglog(dvals[::10], gn[::10], "C0o", mfc="none", ms=5)
    a0.axvspan(1e-5, 1e-2, color="0.93", zorder=0)
    a0.text(1.3e-5, 2e-4, "D rejects fakes\nconfidently", fontsize=8, color="0.35")
    a0.set_xlabel("D(G(z))")
    a0.set_ylabel("|d loss / d logit| per example")
    a0.set_title("gradient w.r.t. D's logit on a fake", fontsize=10)
    a0.legend(fontsize=7, loc="lower center")
    steps = [r["d_step"] for r in trace]
    sx = [max(s, 1) for s in steps]
    a1.semilogy(sx, [r["grad_norm_saturating"] for r in trace], "C3o-", label="||grad_theta|| saturating")
    a1.semilogy(sx, [r["grad_norm_non_saturating"] for r in trace], "C0o-", label="||grad_theta|| non-saturating")
    a1.semilogy(sx, [r["mean_D_fake"] for r in trace], "k:", label="mean D(G(z))")
    a1.set_xscale("log")
    a1.set_xlabel("discriminator training steps (G fixed; step 0 plotted at 1)")
    a1.set_title("generator-parameter gradient through a D that gets confident", fontsize=10)
    a1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "vanishing_gradient.png", dpi=120)
    plt.close(fig)
    return {"trace": trace,
            "max_abs_err_autograd_vs_formula": float(max(np.abs(gs - dvals).max(), np.abs(gn - (1 - dvals)).max()))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="benchmarks/results/gan_theory", help="folder for the PNGs and gan_theory.json")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    ds = load_dataset("gmm1d", "train")
    t0 = time.perf_counter()
    res = {"seed": args.seed}
    for name, fn in (("optimal_discriminator", part_optimal_d), ("value_vs_js", part_value_vs_js),
                     ("wasserstein_vs_js", part_wasserstein), ("vanishing_gradient", part_vanishing_gradient)):
        t = time.perf_counter()
        res[name] = fn(ds, out, args.seed)
        res[name]["seconds"] = round(time.perf_counter() - t, 2)
    res["seconds"] = round(time.perf_counter() - t0, 2)
    (out / "gan_theory.json").write_text(json.dumps(res, indent=2))

    r = res["optimal_discriminator"]
    print(f"(i) D* vs trained D (p = gmm1d, q = {r['q']}): max |D - D*| = {r['max_abs_err']:.4f}, "
          f"mean {r['mean_abs_err']:.4f} on x in [{r['region'][0]:.2f}, {r['region'][1]:.2f}]")
    r = res["value_vs_js"]
    print(f"(ii) max |V(G, D*) - (2 JS - log 4)| over 65 shifts (integration) = {r['max_abs_v_dstar_minus_2js_log4']:.2e}")
    print(f"{'mu':>6} {'JS':>8} {'2JS-log4':>10} {'V(D*)':>10} {'V(D_tr) MC':>11}")
    for row in r["trained"]:
        print(f"{row['mu']:6.1f} {row['js']:8.4f} {row['2js_minus_log4']:10.4f} {row['v_dstar_integral']:10.4f} "
              f"{row['v_trained_mc']:11.4f}")
    print("(iii) WGAN-GP critic vs exact W1 (gmm1d vs shifted copy)")
    print(f"{'theta':>6} {'W1':>6} {'W1 smp':>7} {'JS':>7} {'crit l=10':>10} {'opt l=10':>9} {'crit l=100':>11} "
          f"{'opt l=100':>10}")
    for row in res["wasserstein_vs_js"]["rows"]:
        print(f"{row['theta']:6.1f} {row['w1_exact']:6.2f} {row['w1_samples']:7.3f} {row['js']:7.4f} "
              f"{row['critic_lam10']:10.3f} {row['gp_optimum_lam10']:9.3f} {row['critic_lam100']:11.3f} "
              f"{row['gp_optimum_lam100']:10.3f}")
    r = res["vanishing_gradient"]
    print(f"(iv) |d loss/d logit|: autograd vs D and 1 - D, max abs err {r['max_abs_err_autograd_vs_formula']:.1e}")
    print(f"{'D step':>7} {'mean D(G(z))':>13} {'|g| sat':>10} {'|g| non-sat':>12} {'ratio':>9}")
    for row in r["trace"]:
        print(f"{row['d_step']:7d} {row['mean_D_fake']:13.3e} {row['grad_norm_saturating']:10.3e} "
              f"{row['grad_norm_non_saturating']:12.3e} "
              f"{row['grad_norm_saturating'] / row['grad_norm_non_saturating']:9.2e}")
    print(f"total {res['seconds']:.1f} s; wrote {out}/gan_theory.json and 4 PNGs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
