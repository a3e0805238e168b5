"""DCGAN, SAGAN, BigGAN, ProGAN and StyleGAN on Fashion-MNIST 32x32 at equal CPU budgets (issue 17).

Protocol: Fashion-MNIST train split (28x28 zero-padded by 2 px to 32x32, ``--image-size 32``; exact, no resampling),
scaled to [-1, 1], unconditional. Every architecture: ``dgm train gan --arch A``, batch 64, ``--hidden 16``, z of 64
dims, seed 0, no EMA of G (at a few hundred steps an EMA would average in the early weights), one thread
(OMP_NUM_THREADS=1), trained until its training loop has used ``--minutes`` of process CPU time
(``--max-cpu-minutes``; start-up and data loading are outside the budget). Each row keeps its paper's objective and
optimiser where that is cheap:

  dcgan     non-saturating loss, Adam 2e-4 betas (0.5, 0.999), batch norm            (Radford et al. 2016)
  sagan     hinge loss, TTUR Adam G 1e-4 / D 4e-4 betas (0, 0.9), spectral norm in G and D, self-attention at the
            16x16 map                                                               (Zhang et al. 2019)
  biggan    as sagan, residual G/D, hierarchical latents (skip-z), orthogonal reg. 1e-4  (Brock et al. 2019)
  progan    WGAN-GP (lambda 10, n_critic 1, drift 1e-3), Adam 1e-3 betas (0, 0.99), growing 4 -> 8 -> 16 -> 32
            with --phase-images per fade-in and per stabilisation, minibatch stddev, equalized LR, pixel norm
                                                                                     (Karras et al. 2018)
  stylegan  non-saturating loss with lazy R1 (gamma 10, every 4th D update), Adam 1e-3 betas (0, 0.99), 8-layer
            mapping, AdaIN, constant input, noise inputs, mixing p 0.9, minibatch stddev, residual D; fixed
            resolution (no growing)                                                  (Karras et al. 2019)

Not the papers': the batch sizes (theirs 64-2048), widths, BigGAN's 2 D steps per G step and lr 5e-5 / 2e-4, the EMA
of G (ProGAN, BigGAN, StyleGAN), StyleGAN's growing and 0.01 mapping learning rate.

Evaluation: ``dgm eval RUN --metric fid,kid,pr,swd,msssim -n N --seed 0`` against the 10,000 test images (padded):
FID, KID (as ``dgm eval`` prints it) and precision/recall on dgm's Fashion-MNIST classifier features (the 2-px
border cropped off); SWD x 1e3 on 7x7 Laplacian-pyramid patches per level (32, 16 px); MS-SSIM of random pairs of
fakes (lower = more diverse).
Speed: training images per CPU second = images shown to D / the training loop's CPU seconds (each architecture
with its own objective, so the R1 / gradient-penalty cost is included); sampling images per CPU second = G forward
on batches of 256 with gradients off, one thread, timed in this process after training, all architectures in one
run (so the ratios are comparable; absolute numbers depend on the machine's load).

    python benchmarks/gan_archs.py                     # the committed table: 3 CPU-minutes per arch, -n 1000
    python benchmarks/gan_archs.py --smoke             # a few steps per arch, -n 100 (seconds; checks the script)
    python benchmarks/gan_archs.py --device cuda --minutes 10 -n 5000   # benchmarks/gpu_checks.sh
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARCHS = {  # arch -> its paper's objective / optimiser flags (the rest is "auto": dgm's arch defaults)
    "dcgan": ["--objective", "non-saturating"],
    "sagan": ["--objective", "hinge", "--attn-res", "16"],
    "biggan": ["--objective", "hinge", "--attn-res", "16"],
    "progan": ["--objective", "wgan-gp", "--gp-weight", "10", "--n-critic", "1", "--drift", "0.001", "--lr", "0.001",
               "--beta1", "0", "--beta2", "0.99", "--mbstd"],
    "stylegan": ["--objective", "non-saturating", "--r1", "10", "--r1-every", "4", "--lr", "0.001", "--beta1", "0",
                 "--beta2", "0.99", "--mbstd"],
}
COMMON = ["--data", "fashion-mnist", "--image-size", "32", "--batch-size", "64", "--hidden", "16", "--latent-dim",
          "64", "--ckpt-every", "1000000", "--n-samples", "64", "--eval-every", "0", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _dgm(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dgm.cli", *args], env=ENV, capture_output=True, text=True)


def _train_flags(arch: str, a) -> list:
    budget = ["--steps", str(a.steps)] if a.steps else ["--steps", "100000000", "--max-cpu-minutes", str(a.minutes)]
    extra = ["--phase-images", str(a.phase_images)] if arch == "progan" else []
    return ["--arch", arch, *ARCHS[arch], *COMMON, *extra, *budget, "--seed", str(a.seed), "--device", a.device]


def _config(run: Path) -> dict:
    """The run's objective / optimiser settings as stored (None: the objective's or architecture's paper default)."""
    cfg = json.loads((run / "config.json").read_text())
    from dgm.models.gan import GANConfig

    m, t = GANConfig.from_dict(cfg.get("model_config", {})).flat(), cfg.get("train", {})  # parts nested since issue 31
    keys = ("objective", "spectral_norm", "n_critic", "lr_g", "lr_d", "r1", "r1_every", "ortho_reg", "ema_decay")
    return {**{k: m.get(k) for k in keys}, **{k: t.get(k) for k in ("lr", "optimizer", "beta1", "beta2")}}


def _row(arch: str, a) -> dict:
    """Train one architecture (a subprocess on one thread), evaluate it; a failure is a row with an error."""
    run = Path(a.runs) / f"gan-archs-{arch}"
    shutil.rmtree(run, ignore_errors=True)
    flags = _train_flags(arch, a)
    t0 = time.perf_counter()
    p = _dgm("train", "gan", *flags, "--out", str(run))
    out = {"arch": arch, "flags": " ".join(ARCHS[arch] + (flags[flags.index("--phase-images"):][:2]
                                                          if arch == "progan" else [])),
           "train_wall_s": round(time.perf_counter() - t0, 1)}
    if p.returncode != 0:
        return {**out, "error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    log = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in log if r.get("split") == "train"]
    steps = max((r["step"] for r in train), default=0)
    out.update(steps=steps, images_shown=steps * 64, run=str(run), config=_config(run),
               lr_logged=train[-1].get("lr") if train else None)
    ev = _dgm("eval", str(run), "--metric", "fid,kid,pr,swd,msssim", "-n", str(a.n), "--seed", "0",
              "--device", a.device)
    if ev.returncode != 0:
        return {**out, "error": (ev.stderr.strip().splitlines() or ["?"])[-1]}
    res = json.loads(ev.stdout.strip().splitlines()[-1])
    out.update({k: res[k] for k in ("fid", "kid", "precision", "recall", "swd", "swd_levels", "msssim") if k in res})
    return out


def _speed(rows: list, a) -> None:
    """Train images / CPU-s from each run's budget; sample images / CPU-s timed here, one thread, in turn."""
    import torch

    import dgm

    torch.set_num_threads(1)
    for r in rows:
        if "error" in r:
            continue
        cpu_budget = a.minutes * 60 if not a.steps else None
        r["train_images_per_cpu_s"] = round(r["images_shown"] / cpu_budget, 1) if cpu_budget else None
        m = dgm.load(r["run"])
        gen = torch.Generator().manual_seed(0)
        m.sample(64, generator=gen)  # warm-up
        t = time.process_time()
        for _ in range(a.sample_repeats):
            m.sample(256, generator=gen).cpu()  # .cpu(): waits for CUDA
        r["sample_images_per_cpu_s"] = round(256 * a.sample_repeats / max(time.process_time() - t, 1e-9), 1)
        r["_grid"] = m.sample(64, generator=torch.Generator().manual_seed(0)).cpu()
        r["params_g_d"] = [sum(p.numel() for p in m.generator.parameters()),
                           sum(p.numel() for p in m.discriminator.parameters())]


def _figure(rows: list, path: Path) -> None:
    """One 8x8 sample grid per architecture, side by side (seed 0, the raw G)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dgm.viz.grid import make_grid

    ok = [r for r in rows if "_grid" in r]
    fig, axes = plt.subplots(1, max(len(ok), 1), figsize=(3.2 * max(len(ok), 1), 3.6), squeeze=False)
    for ax, r in zip(axes[0], ok):
        ax.imshow(make_grid((r.pop("_grid") + 1) / 2, nrow=8, min_cell=32), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{r['arch']}\nFID {r['fid']:.0f}, {r['steps']} steps", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(rows: list, a) -> str:
    budget = f"{a.steps} steps" if a.steps else f"{a.minutes:g} CPU-min"
    head = (f"| arch | objective / optimiser | steps in {budget} | images shown | FID | KID | precision | recall | "
            "SWD 32 px | SWD 16 px | SWD mean | MS-SSIM | train img / CPU-s | sample img / CPU-s | params G / D |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['arch']} | {r['flags']} | failed: {r['error']} |")
            continue
        lv = r.get("swd_levels", {})
        g, d = r.get("params_g_d", ["?", "?"])
        lines.append(f"| {r['arch']} | `{r['flags']}` | {r['steps']} | {r['images_shown']} | {r['fid']:.1f} | "
                     f"{r['kid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {lv.get('32', float('nan')):.1f} | "
                     f"{lv.get('16', float('nan')):.1f} | {r['swd']:.1f} | {r['msssim']:.3f} | "
                     f"{r.get('train_images_per_cpu_s') or '-'} | {r.get('sample_images_per_cpu_s', '-')} | "
                     f"{g:,} / {d:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="process CPU minutes of training per architecture")
    ap.add_argument("--steps", type=int, default=0, help="train this many steps instead of a CPU budget (0: off)")
    ap.add_argument("-n", type=int, default=1000, help="fakes drawn for the metrics")
    ap.add_argument("--archs", default=",".join(ARCHS), help="comma-separated subset of " + ",".join(ARCHS))
    ap.add_argument("--phase-images", type=int, default=1500, help="progan: images per fade-in / stabilisation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=5, help="trainings at a time (each on one thread)")
    ap.add_argument("--sample-repeats", type=int, default=4, help="batches of 256 timed for the sampling speed")
    ap.add_argument("--device", default="cpu", help="cpu (the table) or cuda (benchmarks/gpu_checks.sh)")
    ap.add_argument("--smoke", action="store_true", help="4 steps per arch, -n 100, into /tmp (checks the script)")
    ap.add_argument("--runs", default=str(HERE / "runs"))
    ap.add_argument("--out", default=str(HERE / "results" / "gan_archs"))
    a = ap.parse_args()
    if a.smoke:
        a.steps, a.n, a.phase_images, a.sample_repeats = 4, 100, 64, 1
        a.runs, a.out = "/tmp/gan_archs_smoke/runs", "/tmp/gan_archs_smoke/out"
    archs = [s for s in a.archs.split(",") if s]
    bad = [s for s in archs if s not in ARCHS]
    if bad:
        ap.error(f"unknown arch {bad[0]!r}; choose from {', '.join(ARCHS)}")
    import torch

    torch.set_num_threads(1)
    t0, c0, p0 = time.perf_counter(), _child_cpu(), time.process_time()
    load0 = os.getloadavg()
    with cf.ThreadPoolExecutor(min(a.parallel, len(archs))) as ex:
        rows = list(ex.map(lambda s: _row(s, a), archs))
    _speed(rows, a)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    _figure(rows, out / "samples.png")
    cpu = (_child_cpu() - c0) + (time.process_time() - p0)
    table = _table(rows, a)
    print(table)
    print(f"whole script: {cpu / 60:.1f} CPU-minutes, wall {time.perf_counter() - t0:.0f} s, "
          f"load average at start {load0[0]:.1f}, at end {os.getloadavg()[0]:.1f}")
    blob = {"protocol": __doc__, "args": vars(a), "cpu_minutes_total": round(cpu / 60, 2),
            "wall_s": round(time.perf_counter() - t0), "load_avg_start_end": [load0[0], os.getloadavg()[0]],
            "torch": torch.__version__, "rows": rows}
    (out / "results.json").write_text(json.dumps(blob, indent=1) + "\n")
    (out / "table.md").write_text(table)
    if any("error" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
