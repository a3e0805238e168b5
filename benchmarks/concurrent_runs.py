"""Several trainings on one machine: the wall time of each of 1, 2 and 3 concurrent `dgm train` runs, with the old
default (every process on all cores: --threads = the core count), the new one (no --threads: each process takes its
fair share of the cores among the running dgm processes and follows it as they start and end, dgm.threads) and
--threads 1 each, against one run alone.

    python benchmarks/concurrent_runs.py [--steps 200] [--data digits] [--settings old,new,one]
                                         [--out benchmarks/results/concurrent_runs.json]

Run it alone on the machine (it is the load). The processes of one setting start 1 s apart, in order, so that each
sees the ones before it; the table gives each run's wall time and its ratio to the run alone (goal: <= 1.5x).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _command(out: Path, steps: int, data: str, threads):
    cmd = [sys.executable, "-m", "dgm", "train", "gated-pixelcnn", "--data", data, "--binarize", "--steps",
           str(steps), "--n-samples", "0", "--no-progress", "--eval-every", "0", "--out", str(out)]
    return cmd + (["--threads", str(threads)] if threads else [])


def _setting(k: int, threads, steps: int, data: str, tmp: Path, tag: str):
    """Start k runs 1 s apart; their wall times (s) and the thread counts they chose."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "DGM_RUNTIME_DIR": str(tmp / "rt")}
    env.pop("OMP_NUM_THREADS", None)
    procs, starts = [], []
    for i in range(k):
        out = tmp / f"{tag}-{i}"
        starts.append(time.perf_counter())
        procs.append(subprocess.Popen(_command(out, steps, data, threads), env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
        if i < k - 1:
            time.sleep(1.0)
    walls, chosen = [], []
    for p, t0, i in zip(procs, starts, range(k)):
        err = p.communicate()[1]
        walls.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(f"run failed: {err[-500:]}")
        chosen.append(json.loads((tmp / f"{tag}-{i}" / "config.json").read_text())["train"]["threads"])
    return walls, chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--data", default="digits")
    ap.add_argument("--settings", default="old,new,one", help="old: --threads = cores each; new: no --threads; one: "
                    "--threads 1 each")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "concurrent_runs.json"))
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        alone, _ = _setting(1, None, args.steps, args.data, tmp, "alone")
        print(f"one run alone ({cores} cores, default threads): {alone[0]:.1f} s")
        for k in (2, 3):
            for key, name, threads in (("old", "old default (all cores each)", cores), ("new", "new default", None),
                                       ("one", "--threads 1 each", 1)):
                if key not in args.settings.split(","):
                    continue
                walls, chosen = _setting(k, threads, args.steps, args.data, tmp, f"{k}-{threads}")
                ratios = [w / alone[0] for w in walls]
                rows.append({"runs": k, "setting": name, "threads": chosen, "seconds": walls, "ratio": ratios})
                print(f"{k} runs, {name:<28} threads {chosen}: " +
                      ", ".join(f"{w:.1f} s ({r:.2f}x)" for w, r in zip(walls, ratios)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cores": cores, "steps": args.steps, "data": args.data,
                                          "alone_seconds": alone[0], "rows": rows}, indent=1) + "\n")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
