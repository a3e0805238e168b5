"""ELBO and IWAE-k test NLL of VAEs after a fixed CPU budget.

Protocol: binarized data (fixed threshold at half range, as in nll_budget.py), splits of `dgm list datasets`;
each run trains on one CPU thread until it has used --minutes of process CPU time (batch 64, Adam lr 1e-3, seed 0,
library-default architecture: MLP 512-512 for 8x8 digits, the convolutional encoder/decoder for 28x28), validating
the ELBO every 100 (digits) or 500 (Fashion-MNIST) steps and keeping the best-on-validation checkpoint. Then, on the
first --test-images images of the test split (all 360 for digits), with that checkpoint and one thread: the ELBO
(one sample, analytic KL) and the importance-weighted estimate of log p(x) with k samples (IWAE), noise seeded 0.

    python benchmarks/vae_budget.py --minutes 2 5 --datasets digits
    python benchmarks/vae_budget.py --minutes 10 --datasets fashion-mnist --test-images 1000
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

EVAL = r"""
import json, sys, time, torch
import dgm
from dgm.metrics.nll import latent_nll_from_batches
torch.set_num_threads(1)
run, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = dgm.load(run, checkpoint="best")
cfg = model.run_config["data"]
x = dgm.load_dataset(cfg["name"], "test", binarize=cfg["binarize"]).tensors()[0][:n]
t = time.perf_counter()
batches = [(x[i:i + 16], None) for i in range(0, len(x), 16)]
out = latent_nll_from_batches(model, batches, k, seed=0)
out["eval_seconds"] = time.perf_counter() - t
out["eval_step"] = model.trained_steps
print(json.dumps(out))
"""


def _run(model: str, data: str, minutes: float, runs: Path, n: int, k: int, seed: int) -> dict:
    out = runs / f"{data}-{model}-{minutes:g}min-s{seed}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if not (out / "config.json").exists():
        subprocess.run([sys.executable, "-m", "dgm.cli", "train", model, "--data", data, "--binarize",
                        "--steps", "100000000", "--max-cpu-minutes", str(minutes), "--out", str(out), "--seed",
                        str(seed), "--ckpt-every", "5000", "--n-samples", "64", "--no-progress", "--eval-every",
                        str(EVAL_EVERY.get(data, 500))], check=True, env=env, stdout=subprocess.DEVNULL)
    ev = subprocess.run([sys.executable, "-c", EVAL, str(out), str(n), str(k)], check=True, env=env,
                        capture_output=True, text=True)
    result = json.loads(ev.stdout)
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    result.update(model=model, data=data, minutes=minutes, steps=max(r["step"] for r in rows),
                  test_images=result.pop("n"), run=str(out.relative_to(HERE.parent)))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[2.0])
    ap.add_argument("--datasets", nargs="+", default=["digits"])
    ap.add_argument("--models", nargs="+", default=["vae"])
    ap.add_argument("--test-images", type=int, default=10000)
    ap.add_argument("-k", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=str(HERE / "results" / "vae_budget.json"))
    args = ap.parse_args()
    runs = HERE / "runs"
    jobs = [(m, d, mins) for mins in args.minutes for d in args.datasets for m in args.models]
    t0 = time.time()
    with cf.ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_run, *zip(*[(m, d, mins, runs, args.test_images, args.k, args.seed)
                                             for m, d, mins in jobs])))
    print(f"| data | model | CPU min | steps (best) | test images | -ELBO nats | IWAE-{args.k} NLL nats | bits/dim |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['data']} | {r['model']} | {r['minutes']:g} | {r['steps']} ({r['eval_step']}) | {r['test_images']} "
              f"| {-r['elbo_nats']:.2f} | {r['nll_nats']:.2f} | {r['bits_per_dim']:.4f} |")
    path = Path(args.json)
    old = json.loads(path.read_text())["results"] if path.exists() else []
    keep = [o for o in old if (o["model"], o["data"], o["minutes"]) not in {(m, d, mi) for m, d, mi in jobs}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"protocol": __doc__, "results": keep + results}, indent=2))
    print(f"{time.time() - t0:.0f} s; results: {path}")


if __name__ == "__main__":
    main()
