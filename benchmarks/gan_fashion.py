"""DCGAN on Fashion-MNIST at a fixed CPU budget: sample grids for two objectives.

Protocol: Fashion-MNIST train split (55000 images, scaled to [-1, 1]); the library's DCGAN for 28x28
(z of 64 dims, base width --hidden, batch norm in G, D without norm when the objective has a penalty or
spectral norm); each objective trains on one CPU thread (OMP_NUM_THREADS=1) until it has used --minutes
of process CPU time, batch 64, seed 0, the objective's paper optimiser defaults; 64 samples from a fixed
latent batch are saved as a grid. FID lands with the evaluation issue (the grids are what we can show now).

    python benchmarks/gan_fashion.py --minutes 8 --objectives non-saturating hinge:spectral_norm
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(entry: str, minutes: float, hidden: int, runs: Path, out: Path, seed: int) -> dict:
    objective, _, flag = entry.partition(":")
    name = entry.replace(":", "-").replace("_", "-")
    run = runs / f"fashion-mnist-{name}-{minutes:g}min-s{seed}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    extra = ["--" + flag.replace("_", "-")] if flag else []
    if not (run / "config.json").exists():
        cmd = [sys.executable, "-m", "dgm.cli", "train", "gan", "--objective", objective, *extra, "--data",
               "fashion-mnist", "--hidden", str(hidden), "--steps", "100000000", "--max-cpu-minutes", str(minutes),
               "--batch-size", "64", "--seed", str(seed), "--ckpt-every", "2000", "--n-samples", "64",
               "--no-progress", "--out", str(run)]
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    grid = sorted((run / "samples").glob("step-*.png"))[-1]
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"fashion-mnist-{name}.png"
    shutil.copyfile(grid, dest)
    return {"entry": entry, "minutes": minutes, "steps": train[-1]["step"], "loss_d": train[-1]["loss_d"],
            "loss_g": train[-1].get("loss_g"), "images_per_sec": train[-1]["images_per_sec"],
            "grid": str(dest.resolve().relative_to(HERE.parent)) if HERE.parent in dest.resolve().parents else str(dest)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objectives", nargs="+", default=["non-saturating", "hinge:spectral_norm"],
                    help="objective[:flag] entries, e.g. hinge:spectral_norm")
    ap.add_argument("--minutes", type=float, default=8.0, help="process CPU minutes per run")
    ap.add_argument("--hidden", type=int, default=32, help="DCGAN base width")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default=str(HERE / "runs"))
    ap.add_argument("--out", default=str(HERE / "results" / "gan_fashion"))
    a = ap.parse_args()
    with cf.ThreadPoolExecutor(len(a.objectives)) as ex:
        res = list(ex.map(lambda e: _run(e, a.minutes, a.hidden, Path(a.runs), Path(a.out), a.seed), a.objectives))
    print(f"{'objective':<24} {'CPU min':>8} {'D steps':>8} {'img/s':>8}  grid")
    for r in res:
        print(f"{r['entry']:<24} {r['minutes']:>8g} {r['steps']:>8} {r['images_per_sec']:>8.0f}  {r['grid']}")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "results.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
