"""Test NLL of autoregressive models vs an independent-pixel baseline after a fixed CPU budget.

Protocol: binarized data (fixed threshold at half range: digits level >= 8 of 0..16, Fashion-MNIST
value >= 128 of 0..255); splits of `dgm list datasets` (digits 1257/180/360, Fashion-MNIST
55000/5000/10000); each model trains on one CPU thread (OMP_NUM_THREADS=1) until it has used
--minutes of process CPU time, batch 64, Adam lr 1e-3, seed 0, library-default architecture,
validating every EVAL_EVERY steps (digits 100, Fashion-MNIST 500) and keeping the best-on-validation
checkpoint (early stopping: 8x8 digits has only 1257 training images and a PixelCNN overfits it
within minutes); then the exact test NLL (nats per example, bits/dim) of that checkpoint is computed
with `dgm eval --checkpoint best`. Sampling speed: naive
sampling (one network pass per pixel) of 16 images with each trained 28x28 model, one thread, and
the training throughput in images per second.

    python benchmarks/nll_budget.py --minutes 10 --datasets digits fashion-mnist
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVAL_EVERY = {"digits": 100, "fashion-mnist": 500}


def _train_and_eval(model: str, data: str, minutes: float, runs: Path, seed: int) -> dict:
    out = runs / f"{data}-{model}-{minutes:g}min-s{seed}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if not (out / "config.json").exists():
        cmd = [sys.executable, "-m", "dgm.cli", "train", model, "--data", data, "--binarize", "--steps", "100000000",
               "--max-cpu-minutes", str(minutes), "--out", str(out), "--seed", str(seed), "--ckpt-every", "5000",
               "--n-samples", "16", "--no-progress", "--eval-every", str(EVAL_EVERY.get(data, 500))]
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    which = "best" if (out / "checkpoints" / "best.pt").exists() else "latest"
    ev = subprocess.run([sys.executable, "-m", "dgm.cli", "eval", str(out), "--metric", "nll", "--split", "test",
                         "--checkpoint", which],
                        check=True, env=env, capture_output=True, text=True)
    result = json.loads(ev.stdout)
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    total = max(r["step"] for r in rows)
    result.update(model=model, data=data, minutes=minutes, steps=total, eval_step=result.pop("step"),
                  train_images_per_sec=train_rows[-1]["images_per_sec"] if train_rows else None)
    return result


def _sampling_seconds(run: Path, n: int = 16) -> float:
    import torch

    import dgm

    torch.set_num_threads(1)
    model = dgm.load(run, checkpoint="latest")
    t = time.perf_counter()
    model.sample(n, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10.0])
    ap.add_argument("--datasets", nargs="+", default=["digits", "fashion-mnist"])
    ap.add_argument("--models", nargs="+", default=["independent", "pixelcnn", "gated-pixelcnn"])
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel, one CPU thread each")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default=str(HERE / "runs"))
    ap.add_argument("--json", default=str(HERE / "results" / "nll_budget.json"))
    args = ap.parse_args()
    runs = Path(args.runs)
    jobs = [(m, d, mins) for mins in args.minutes for d in args.datasets for m in args.models]
    results = []
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        futs = [pool.submit(_train_and_eval, m, d, mins, runs, args.seed) for m, d, mins in jobs]
        for f in cf.as_completed(futs):
            r = f.result()
            results.append(r)
            print(f"finished {r['data']} {r['model']} {r['minutes']:g} min: {r['nll_nats']:.2f} nats", flush=True)
    for r in results:
        if r["model"] != "independent" and r["data"] != "digits":
            r["sample16_seconds"] = _sampling_seconds(Path(r["run"]))
    results.sort(key=lambda r: (r["minutes"], r["data"], r["model"]))
    head = f"{'data':<14}{'model':<16}{'cpu min':>8}{'steps':>8}{'best at':>8}{'img/s':>8}{'test NLL nats':>15}{'bits/dim':>10}{'sample 16 (s)':>15}"
    print(head)
    print("-" * len(head))
    for r in results:
        s = f"{r['sample16_seconds']:.1f}" if "sample16_seconds" in r else "-"
        print(f"{r['data']:<14}{r['model']:<16}{r['minutes']:>8g}{r['steps']:>8}{r['eval_step']:>8}{r['train_images_per_sec']:>8.0f}"
              f"{r['nll_nats']:>15.2f}{r['bits_per_dim']:>10.4f}{s:>15}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"protocol": __doc__.strip(), "results": results}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
