"""Issue 35's tables: adversarial inference (ALI / BiGAN) and disentanglement (VAE, beta-VAE, FactorVAE).

    python benchmarks/feature_space.py grid25  [--seeds 5] [--steps 2000]   # ALI vs GAN on the 25-Gaussian grid
    python benchmarks/feature_space.py digits  [--seeds 3] [--steps 1500]   # codes of ALI / BiGAN / a VAE vs pixels, PCA
    python benchmarks/feature_space.py shapes  [--seeds 3] [--steps 3000]   # disentanglement on shapes 32x32
    python benchmarks/feature_space.py TABLE --table                        # print what is recorded so far

Every job trains on one thread; two jobs run at once (``--jobs``), nothing else should run beside them. Rows and
seeds are recorded in benchmarks/results/feature_space/TABLE/rows.jsonl as they finish; a rerun runs only the jobs
not recorded yet (``dgm.bench.table``), so the tables grow across sessions (e.g. ``--seeds 5`` after ``--seeds 3``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dgm.bench.table import Job, add_arguments, run_or_show

RESULTS = Path(__file__).parent / "results" / "feature_space"
POINTS = ["--data", "grid25", "--hidden", "128", "--batch-size", "128"]


def grid25_jobs(seeds, steps):
    """The ALI paper's 25-Gaussian toy (means {-4,-2,0,2,4}^2, std 0.05): ALI and the plain GAN with the same MLP G
    and the same D width, the non-saturating loss, Adam 2e-4 (0.5, 0.999), batch 128."""
    rows = {"gan": (["gan", *POINTS], [["--metric", "modes"]]),
            "ali (stochastic E, gaussian z)": (["ali", *POINTS], [["--metric", "representation", "--probe-train",
                                                                      "2000"]]),
            "bigan (deterministic E, uniform z)": (["ali", *POINTS, "--encoder", "deterministic", "--latent",
                                                   "uniform"], [["--metric", "representation", "--probe-train",
                                                                 "2000"]])}
    return [Job(name, s, [*train, "--steps", str(steps)], evals) for name, (train, evals) in rows.items()
            for s in range(seeds)]


def digits_jobs(seeds, steps):
    """Codes of the same size (64) from ALI, BiGAN and a VAE (its posterior means) on digits."""
    rep = [["--metric", "representation"]]
    rows = {"ali (stochastic E)": ["ali", "--data", "digits", "--steps", str(steps)],
            "bigan (deterministic E, uniform z)": ["ali", "--data", "digits", "--encoder", "deterministic",
                                                   "--latent", "uniform", "--steps", str(steps)],
            "vae (latent 64, posterior mean)": ["vae", "--data", "digits", "--latent-dim", "64", "--steps",
                                                str(2 * steps)]}
    return [Job(name, s, train, rep) for name, train in rows.items() for s in range(seeds)]


def shapes_jobs(seeds, steps):
    """VAE (beta 1), beta-VAE (beta 4), FactorVAE (gamma 10, 35) on shapes 32x32: same encoder/decoder."""
    base = ["--data", "shapes", "--image-size", "32", "--steps", str(steps)]
    ev = [["--metric", "disentanglement"], ["--metric", "representation", "--probe-train", "5000"]]
    rows = {"vae (beta 1)": ["beta-vae", *base, "--beta", "1"],
            "beta-vae (beta 4)": ["beta-vae", *base, "--beta", "4"],
            "factor-vae (gamma 10)": ["factor-vae", *base, "--tc-weight", "10"],
            "factor-vae (gamma 35)": ["factor-vae", *base, "--tc-weight", "35"]}
    return [Job(name, s, train, ev) for s in range(seeds) for name, train in rows.items()]


TABLES = {
    "grid25": (grid25_jobs, 5, 2000, ["modes", "high_quality", "same_mode", "reconstruction_ratio", "knn_accuracy"]),
    "digits": (digits_jobs, 3, 1500, ["knn_accuracy", "logistic_accuracy", "reconstruction_ratio",
                                      "class_preservation"]),
    "shapes": (shapes_jobs, 3, 3000, ["factor_vae_score", "mig", "val_rec_nats", "val_kl_nats", "active_dims",
                                      "reconstruction_ratio"]),  # shapes has no classes: no probe columns
}


def digits_baselines():
    """Raw pixels and PCA codes of the same size (64 = all of digits' pixels, and 16) under the same probes."""
    from sklearn.decomposition import PCA

    from dgm.metrics.representation import probe_accuracies
    from dgm.runs import load_data

    (tx, ty), (x, y) = (load_data({"name": "digits"}, s).tensors() for s in ("train", "test"))
    tx, x = tx.flatten(1).numpy() / 16, x.flatten(1).numpy() / 16
    out = {"raw pixels (64)": probe_accuracies(tx, ty.numpy(), x, y.numpy())}
    for d in (16, 8):
        pca = PCA(d, random_state=0).fit(tx)
        out[f"pca ({d})"] = probe_accuracies(pca.transform(tx), ty.numpy(), pca.transform(x), y.numpy())
        rec = pca.inverse_transform(pca.transform(x))
        other = np.roll(rec, 1, axis=0)
        out[f"pca ({d})"]["reconstruction_ratio"] = float(np.linalg.norm(x - rec, axis=1).mean()
                                                          / np.linalg.norm(x - other, axis=1).mean())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("which", choices=sorted(TABLES))
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    add_arguments(ap)
    a = ap.parse_args(argv)
    make, seeds, steps, columns = TABLES[a.which]
    out = Path(a.out or RESULTS / a.which)
    _, text = run_or_show(make(a.seeds or seeds, a.steps or steps), out, a, columns)
    if a.which == "digits":
        base = digits_baselines()
        text += "\n" + "\n".join(f"| {k} | {v['knn_accuracy']:.3f} | {v['logistic_accuracy']:.3f} | "
                                 f"{v.get('reconstruction_ratio', float('nan')):.3f} | - | - | 0 |"
                                 for k, v in base.items())
        (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
