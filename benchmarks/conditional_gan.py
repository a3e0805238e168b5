"""Class-conditional DCGAN (issue 16): unconditional vs CGAN concat vs projection D vs ACGAN at a fixed budget.

Protocol: digits (8x8, sklearn) and Fashion-MNIST (28x28) train splits in [-1, 1]; the library's DCGAN (base width
--hidden, z of 64 dims), objective --objective with its paper optimiser defaults, batch 64, seed 0, one CPU thread
per run (OMP_NUM_THREADS=1, runs one after another), a fixed number of D updates per dataset (the same for the four
variants: the budget is in steps, and the measured process CPU seconds of each run are reported beside it). Then

    dgm eval RUN --metric cas            (conditional runs: the shipped classifier's accuracy on samples of the
                                          labels asked for; JSON `cas`)
    dgm eval RUN --metric fid --per-class (conditional runs: FID, intra-class FID `intra_fid`, `fid_per_class`)
    dgm eval RUN --metric fid            (the unconditional baseline: FID only; CAS is undefined without labels)

with -n samples against the test split, features of dgm's shipped classifier for the dataset. Results go to
benchmarks/results/conditional_gan/results.json and results.md. The defaults take about 20 CPU-minutes in all:

    python benchmarks/conditional_gan.py                       # full protocol
    python benchmarks/conditional_gan.py --steps 5 5 --no-eval # smoke test of the training half
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
DATASETS = ("digits", "fashion-mnist")
VARIANTS = ("unconditional", "concat", "projection", "ac")


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _dgm(args, env) -> tuple:
    """(stdout, CPU seconds) of one `python -m dgm.cli ...` child."""
    before = _cpu_children()
    p = subprocess.run([sys.executable, "-m", "dgm.cli", *args], env=env, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"dgm {' '.join(args)} failed: {p.stderr.strip().splitlines()[-1:]}")
    return p.stdout, _cpu_children() - before


def _one(data: str, variant: str, steps: int, a, env) -> dict:
    run = Path(a.runs) / f"{data}-{variant}-{a.objective}-{steps}steps-s{a.seed}"
    cond = [] if variant == "unconditional" else ["--conditional", "--cond", variant]
    row = {"data": data, "variant": variant, "objective": a.objective, "steps": steps}
    if not (run / "config.json").exists():
        _, cpu = _dgm(["train", "gan", "--data", data, "--arch", "dcgan", "--objective", a.objective, *cond,
                       "--hidden", str(a.hidden), "--steps", str(steps), "--batch-size", "64", "--seed", str(a.seed),
                       "--ckpt-every", str(max(steps, 1)), "--n-samples", "40", "--no-progress", "--out", str(run)],
                      env)
        (run / "train_cpu_seconds.txt").write_text(f"{cpu:.1f}\n")
    row["train_cpu_s"] = float((run / "train_cpu_seconds.txt").read_text())
    if a.no_eval:
        return row
    metrics = [["--metric", "fid"]] if variant == "unconditional" else [["--metric", "cas"],
                                                                         ["--metric", "fid", "--per-class"]]
    row["eval_cpu_s"] = 0.0
    for m in metrics:
        try:
            out, cpu = _dgm(["eval", str(run), *m, "-n", str(a.n), "--seed", str(a.seed)], env)
            res = json.loads(out)
            row.update({k: res[k] for k in ("cas", "fid", "intra_fid", "fid_per_class") if k in res})
        except (RuntimeError, json.JSONDecodeError) as e:  # a metric not yet merged: say so, keep the rest
            row.setdefault("errors", []).append(str(e))
            cpu = 0.0
        row["eval_cpu_s"] += cpu
    return row


def _table(rows) -> str:
    def f(v):
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| data | variant | D steps | train CPU s | CAS | FID | intra-FID |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['data']} | {r['variant']} | {r['steps']} | {r['train_cpu_s']:.0f} | {f(r.get('cas'))} | "
                     f"{f(r.get('fid'))} | {f(r.get('intra_fid'))} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, nargs=2, default=[3000, 2000], metavar=("DIGITS", "FASHION"),
                    help="D updates per run on digits and on Fashion-MNIST")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--objective", default="non-saturating")
    ap.add_argument("--hidden", type=int, default=32, help="DCGAN base width")
    ap.add_argument("-n", type=int, default=5000, help="samples per evaluation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-eval", action="store_true", help="train only (the metrics are another issue's)")
    ap.add_argument("--runs", default=str(HERE / "runs" / "conditional_gan"))
    ap.add_argument("--out", default=str(HERE / "results" / "conditional_gan"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    steps = dict(zip(DATASETS, a.steps))
    t0, rows = time.time(), []
    for data in a.datasets:
        for variant in a.variants:
            rows.append(_one(data, variant, steps[data], a, env))
            r = rows[-1]
            print(f"{data:<14} {variant:<14} {r['train_cpu_s']:7.0f} CPU s  cas {r.get('cas', '-')}  "
                  f"fid {r.get('fid', '-')}  intra {r.get('intra_fid', '-')}", flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    total = sum(r["train_cpu_s"] + r.get("eval_cpu_s", 0.0) for r in rows)
    meta = {"objective": a.objective, "hidden": a.hidden, "n": a.n, "seed": a.seed, "batch_size": 64,
            "threads": 1, "total_cpu_s": round(total, 1), "wall_s": round(time.time() - t0, 1)}
    (out / "results.json").write_text(json.dumps({"protocol": meta, "runs": rows}, indent=1) + "\n")
    (out / "results.md").write_text(_table(rows))
    print(_table(rows) + f"total {total / 60:.1f} CPU-minutes")


if __name__ == "__main__":
    main()
