"""Issue 38's tables: what each GAN practice tip is worth at a CPU budget, the VAE-GAN against its parents, and the
data-copying test on every family.

    python benchmarks/gan_practice.py tips    [--seeds 3] [--cpu-minutes 5]   # DCGAN on Fashion-MNIST, each tip on
    python benchmarks/gan_practice.py hybrid  [--seeds 3] [--cpu-minutes 5]   # vae-gan vs vae vs dcgan
    python benchmarks/gan_practice.py TABLE --table                           # what is recorded so far

Every job trains on one thread until its process has used --cpu-minutes of CPU (``--max-cpu-minutes``: equal
budgets), then `dgm eval --metric fid,pr,copying -n 2000` scores 2,000 samples against the test split with the
shipped Fashion-MNIST classifier's features (copying: the training split's features, 5 k-means cells). Two jobs
at once (``--jobs``), nothing else beside them. Rows and seeds are recorded in
benchmarks/results/gan_practice/TABLE/rows.jsonl as they finish and a rerun runs only what is missing
(``dgm.bench.table``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dgm.bench.table import Job, add_arguments, run_or_show

RESULTS = Path(__file__).parent / "results" / "gan_practice"
EVAL = [["--metric", "fid,pr,copying", "-n", "2000"]]
COLUMNS = ["fid", "precision", "recall", "copying_statistic", "closer_to_train"]

TIPS = {
    "dcgan (defaults)": [],
    "#8 replay (K 2000, share 0.5)": ["--replay", "2000", "--replay-share", "0.5"],
    "#6 flip labels (0.05)": ["--flip-labels", "0.05"],
    "#13 G layer noise (0.1, annealed)": ["--g-layer-noise", "0.1"],
    "#4 joint D batch": ["--d-batches", "joint"],
    "#5 pixelshuffle + avgpool + LeakyReLU": ["--arch", "dcgan", "--upsample", "pixelshuffle", "--downsample",
                                              "avgpool", "--g-activation", "leaky-relu"],
}


def tips_jobs(seeds, minutes):
    base = ["gan", "--data", "fashion-mnist", "--max-cpu-minutes", str(minutes), "--steps", "1000000"]
    return [Job(name, s, [*base, *flags], EVAL) for s in range(seeds) for name, flags in TIPS.items()]


def hybrid_jobs(seeds, minutes):
    budget = ["--data", "fashion-mnist", "--max-cpu-minutes", str(minutes), "--steps", "1000000"]
    rows = {"vae-gan": ["vae-gan", *budget], "vae": ["vae", *budget], "dcgan": ["gan", *budget]}
    return [Job(name, s, train, EVAL) for s in range(seeds) for name, train in rows.items()]


TABLES = {"tips": tips_jobs, "hybrid": hybrid_jobs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("which", choices=sorted(TABLES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cpu-minutes", type=float, default=5.0)
    add_arguments(ap)
    a = ap.parse_args(argv)
    out = Path(a.out or RESULTS / a.which)
    _, text = run_or_show(TABLES[a.which](a.seeds, a.cpu_minutes), out, a, COLUMNS)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
