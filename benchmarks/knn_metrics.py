"""Time and peak memory of precision/recall + density/coverage: dgm's chunked k-NN vs the full distance matrices,
and FID-from-features time vs torchmetrics, all measured in one run.

    python benchmarks/knn_metrics.py                      # 10k, 20k, 50k x 64-d and 2048-d (about 10 min on 2 cores)
    python benchmarks/knn_metrics.py --sizes 10000 --dims 64

Every measurement runs in a fresh subprocess so that its peak RSS (ru_maxrss) is its own; the features are
float32 Gaussians, real N(0, 1) and fake N(0.02, 1.02^2) (close enough that P/R/D/C stay away from 0 and 1 at
2048-d), generated inside the subprocess, so the peak includes them.
The full-matrix method (all of real-real, fake-fake and fake-real distances held at once, as in the reference
implementations) is skipped where its matrices alone would exceed --full-limit-gib.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
method, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]))
rng = np.random.default_rng(0)
real = rng.standard_normal((n, d), dtype=np.float32)
fake = (rng.standard_normal((n, d), dtype=np.float32) * 1.02 + 0.02).astype(np.float32)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if method == "chunked":
    from dgm.metrics.manifold import manifold_metrics
    out = manifold_metrics(real, fake, 3, 5)
elif method == "full":
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    drr, dff, dfr = torch.cdist(r, r), torch.cdist(f, f), torch.cdist(f, r)
    rr3, rr5 = drr.topk(6, 1, largest=False).values[:, 3], drr.topk(6, 1, largest=False).values[:, 5]
    rf3 = dff.topk(4, 1, largest=False).values[:, 3]
    out = dict(precision=(dfr <= rr3[None]).any(1).double().mean().item(),
               recall=(dfr <= rf3[:, None]).any(0).double().mean().item(),
               density=(dfr <= rr5[None]).sum().item() / (5 * n),
               coverage=(dfr.min(0).values <= rr5).double().mean().item())
elif method in ("fid", "fid-torchmetrics"):
    if method == "fid":
        from dgm.metrics import fid_from_features
        out = {"fid": fid_from_features(real, fake)}
    else:
        from torchmetrics.image.fid import FrechetInceptionDistance
        class P(torch.nn.Module):
            num_features = d
            def forward(self, x):
                return x
        m = FrechetInceptionDistance(feature=P())
        m.update(torch.from_numpy(real), real=True)
        m.update(torch.from_numpy(fake), real=False)
        out = {"fid": m.compute().item()}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak / 1024, "rss_before_mib": base / 1024, **out}))
"""


def run_child(method: str, n: int, d: int, threads: int) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, method, str(n), str(d), str(threads)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["killed"])[-1], "returncode": p.returncode}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 20000, 50000])
    ap.add_argument("--dims", type=int, nargs="+", default=[64, 2048])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--full-limit-gib", type=float, default=12.0, help="skip the full-matrix method above this")
    ap.add_argument("--fid-n", type=int, default=10000, help="samples per set for the FID timing (2048-d)")
    ap.add_argument("--out", default="benchmarks/results/knn_metrics/results.json")
    args = ap.parse_args()
    rows = []
    for d in args.dims:
        for n in args.sizes:
            row = {"n": n, "dim": d}
            row["chunked"] = run_child("chunked", n, d, args.threads)
            need_gib = 3 * n * n * 4 / 2 ** 30
            if need_gib <= args.full_limit_gib:
                row["full"] = run_child("full", n, d, args.threads)
            else:
                row["full"] = {"skipped": f"its three {n}x{n} float32 matrices need {need_gib:.1f} GiB"}
            rows.append(row)
            c, f = row["chunked"], row["full"]
            print(f"n={n:>6} d={d:>5}  chunked {c.get('seconds', float('nan')):8.1f} s "
                  f"{c.get('peak_rss_mib', float('nan')):8.0f} MiB | full "
                  + (f"{f['seconds']:8.1f} s {f['peak_rss_mib']:8.0f} MiB" if "seconds" in f else
                     f.get("skipped", f.get("error", ""))), flush=True)
    fid = {m: run_child(m, args.fid_n, 2048, args.threads) for m in ("fid", "fid-torchmetrics")}
    print(f"FID of {args.fid_n} x 2048-d features: dgm {fid['fid']['seconds']:.2f} s, torchmetrics "
          f"{fid['fid-torchmetrics']['seconds']:.2f} s, values {fid['fid']['fid']:.6f} vs "
          f"{fid['fid-torchmetrics']['fid']:.6f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"protocol": __doc__, "threads": args.threads, "knn": rows, "fid": fid}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
