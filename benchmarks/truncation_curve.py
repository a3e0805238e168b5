"""The truncation curve of a small DCGAN: FID, precision and recall (and CAS for a conditional run) against PSI.

Protocol: for each dataset a DCGAN (base width --hidden 32, non-saturating loss, batch 64, seed 0) trains on one
CPU thread until it has used --minutes of process CPU time (or --run names an existing run). Then for every
truncation mode the model has (interpolate: PSI z, PSI in [0, 1]; resample: |z_i| <= PSI, PSI > 0) and every
PSI, -n samples are drawn with the same seed and compared with the test split through dgm's shipped classifier of
the dataset (`dgm.metrics.truncation_curve`; FID, and P/R with k = 3 on min(n, N_test) pairs). The first row,
mode "none", is the ordinary sampler. Writes results.json, a table (printed, and pasted into benchmarks/README.md)
and one PNG per dataset under --out.

    python benchmarks/truncation_curve.py                        # digits 2 CPU-min, fashion-mnist 5 CPU-min
    python benchmarks/truncation_curve.py --data digits --run runs/gan-digits
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
PSIS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # interpolate takes 0..1, resample > 0
MINUTES = {"digits": 2.0, "fashion-mnist": 5.0}
SAMPLES = {"digits": 1000, "fashion-mnist": 2000}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _train(data: str, minutes: float, hidden: int, seed: int, runs: Path, conditional: bool) -> Path:
    run = runs / f"truncation-{data}{'-cond' if conditional else ''}-{minutes:g}min-s{seed}"
    if not (run / "config.json").exists():
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "dgm.cli", "train", "gan", "--data", data, "--hidden", str(hidden),
               "--steps", "100000000", "--max-cpu-minutes", str(minutes), "--batch-size", "64", "--seed", str(seed),
               "--ckpt-every", "2000", "--n-samples", "64", "--no-progress", "--out", str(run)]
        subprocess.run(cmd + (["--conditional"] if conditional else []), check=True, env=env,
                       stdout=subprocess.DEVNULL)
    return run


def _plot(rows, data: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = rows[0]
    cols = ["fid", "precision", "recall"] + (["cas"] if "cas" in base else [])
    fig, axes = plt.subplots(1, len(cols), figsize=(3.6 * len(cols), 3.2))
    for ax, key in zip(axes, cols):
        for mode, style in (("interpolate", "o-"), ("resample", "s--")):
            pts = [(r["psi"], r[key]) for r in rows if r["mode"] == mode and r[key] is not None]
            if pts:
                ax.plot(*zip(*pts), style, label=mode)
        ax.axhline(base[key], color="grey", lw=0.8, ls=":", label="untruncated")
        ax.set_xlabel("PSI")
        ax.set_title(key.upper() if key in ("fid", "cas") else key)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"truncation curve: DCGAN on {data} ({base['features']} features)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(results) -> str:
    lines = ["| data | mode | PSI | FID | precision | recall | CAS |", "|---|---|---|---|---|---|---|"]
    def f(v, digits=3):
        return "–" if v is None else f"{v:.{digits}f}"

    for res in results:
        for r in res["rows"]:
            psi = "–" if r["psi"] is None else f"{r['psi']:g}"
            lines.append(f"| {res['data']} | {r['mode'] or 'none'} | {psi} | {f(r.get('fid'), 1)} | "
                         f"{f(r.get('precision'))} | {f(r.get('recall'))} | {f(r.get('cas'))} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=["digits", "fashion-mnist"])
    ap.add_argument("--run", nargs="+", default=None, help="existing GAN runs (one per --data) instead of training")
    ap.add_argument("--minutes", type=float, default=None, help="training CPU minutes (default: digits 2, "
                    "fashion-mnist 5)")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--conditional", action="store_true", help="train class-conditional GANs (adds the CAS column)")
    ap.add_argument("-n", type=int, default=None, help="samples per point (default: digits 1000, fashion-mnist 2000)")
    ap.add_argument("--psis", type=float, nargs="+", default=list(PSIS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default=str(HERE / "runs"))
    ap.add_argument("--out", default=str(HERE / "results" / "truncation"))
    a = ap.parse_args()
    if a.run and len(a.run) != len(a.data):
        ap.error("--run takes one run per --data")
    torch.set_num_threads(1)
    import dgm
    from dgm.metrics import truncation_curve

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, data in enumerate(a.data):
        minutes = a.minutes or MINUTES.get(data, 2.0)
        cpu0 = _children_cpu()
        run = Path(a.run[i]) if a.run else _train(data, minutes, a.hidden, a.seed, Path(a.runs), a.conditional)
        train_cpu = _children_cpu() - cpu0
        model = dgm.load(run)
        metrics = ("fid", "pr", "cas") if model.conditional else ("fid", "pr")
        n = a.n or SAMPLES.get(data, 1000)
        t0 = time.process_time()
        rows = truncation_curve(model, a.psis, metrics, n=n, seed=a.seed, batch_size=500)
        keep = ("mode", "psi", "fid", "precision", "recall", "cas", "cas_per_class", "n_real", "n_fake", "features")
        rows = [{k: r[k] for k in keep if k in r} for r in rows]
        res = {"data": data, "run": str(run), "step": model.trained_steps, "train_cpu_minutes": None if a.run else minutes,
               "train_cpu_seconds_measured": round(train_cpu, 1) if not a.run else None,
               "eval_cpu_seconds": round(time.process_time() - t0, 1), "n": n, "split": "test", "seed": a.seed,
               "conditional": model.conditional, "rows": rows}
        _plot(rows, data, out / f"truncation_{data}.png")
        res["plot"] = f"benchmarks/results/truncation/truncation_{data}.png"
        results.append(res)
        print(f"{data}: step {model.trained_steps}, curve in {res['eval_cpu_seconds']} CPU s", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(_table(results))


if __name__ == "__main__":
    main()
