"""VQ-VAE and its Gated PixelCNN prior after fixed CPU budgets.

Protocol: binarized data (fixed threshold at half range), splits of `dgm list datasets`. The VQ-VAE
(library defaults: 64 codes of dimension 16, hidden 64; 8x8 digits -> 4x4 codes, 28x28 -> 7x7) trains on one CPU
thread for --vq-minutes of process CPU time, batch 64, Adam lr 1e-3, seed 0; its final checkpoint is the one
`--from` uses and the one measured. Then `dgm train vq-vae-prior --from` that run trains for
--prior-minutes (defaults: hidden 64, 8 gated layers), keeping its best-on-validation checkpoint. On the whole
test split: reconstruction NLL -log p(x | z_q(x)), pixel MSE of E[x | z_q] (images in [0, 1]), code
perplexity, the prior's exact NLL of the code maps (nats per image; bits per code), and their sum, which is
-ELBO of the VQ-VAE with this prior (q is a point mass on the codes, so the KL term is -log p(codes)): an
upper bound on -log p(x), comparable with VAE numbers.

    python benchmarks/vq_budget.py --datasets digits --vq-minutes 2 --prior-minutes 3
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


def _dgm(*args, capture=False):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dgm.cli", *args], check=True, env=env, text=True,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL)


def _run(data: str, vq_minutes: float, prior_minutes: float, runs: Path, seed: int) -> dict:
    vq = runs / f"{data}-vq-vae-{vq_minutes:g}min-s{seed}"
    prior = runs / f"{data}-vq-vae-prior-{vq_minutes:g}+{prior_minutes:g}min-s{seed}"
    common = ["--steps", "100000000", "--seed", str(seed), "--ckpt-every", "5000", "--n-samples", "64",
              "--no-progress", "--eval-every", str(EVAL_EVERY.get(data, 500))]
    if not (vq / "config.json").exists():
        _dgm("train", "vq-vae", "--data", data, "--binarize", "--max-cpu-minutes", str(vq_minutes), "--out", str(vq),
             *common)
    if not (prior / "config.json").exists():
        _dgm("train", "vq-vae-prior", "--from", str(vq), "--max-cpu-minutes", str(prior_minutes), "--out",
             str(prior), *common)
    rec = json.loads(_dgm("eval", str(vq), "--metric", "recon", capture=True).stdout)  # the checkpoint --from used
    nll = json.loads(_dgm("eval", str(prior), "--metric", "nll", "--checkpoint", "best", capture=True).stdout)
    return {"data": data, "vq_minutes": vq_minutes, "prior_minutes": prior_minutes, "vq_step": rec["step"],
            "prior_step": nll["step"], "rec_nats": rec["rec_nats"], "mse": rec["mse"], "perplexity": rec["perplexity"],
            "prior_nll_nats": nll["nll_nats"], "prior_bits_per_code": nll["bits_per_dim"],
            "neg_elbo_nats": rec["rec_nats"] + nll["nll_nats"], "n": rec["n"],
            "vq_run": str(vq.relative_to(HERE.parent)), "prior_run": str(prior.relative_to(HERE.parent))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["digits"])
    ap.add_argument("--vq-minutes", type=float, default=2.0)
    ap.add_argument("--prior-minutes", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=str(HERE / "results" / "vq_budget.json"))
    args = ap.parse_args()
    t0 = time.time()
    with cf.ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_run, args.datasets, *zip(*[(args.vq_minutes, args.prior_minutes, HERE / "runs",
                                                              args.seed)] * len(args.datasets))))
    print("| data | VQ / prior CPU min | steps (best) | rec. NLL nats | MSE | perplexity | prior NLL nats | "
          "bits/code | -ELBO nats |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['data']} | {r['vq_minutes']:g} / {r['prior_minutes']:g} | {r['vq_step']} / {r['prior_step']} | "
              f"{r['rec_nats']:.2f} | {r['mse']:.4f} | {r['perplexity']:.1f} | {r['prior_nll_nats']:.2f} | "
              f"{r['prior_bits_per_code']:.3f} | {r['neg_elbo_nats']:.2f} |")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"protocol": __doc__, "results": results}, indent=2))
    print(f"{time.time() - t0:.0f} s; results: {path}")


if __name__ == "__main__":
    main()
