"""StyleGAN's Table 1 rows B-F (Karras et al. 2019) at small scale on digits 8x8, equal CPU budgets.

Protocol: sklearn digits (8x8, train split, scaled to [-1, 1]); ``dgm train gan --arch stylegan`` at a fixed
resolution (4x4 -> 8x8, 4 style layers; no progressive growing), --hidden 16 (channels 32 at 4x4, 16 at 8x8),
--latent-dim 32 (z and w), batch 32, non-saturating loss with lazy R1 (gamma 10, every 4th D update),
minibatch stddev in D (residual D blocks), Adam lr 1e-3 betas (0, 0.99) as StyleGAN, EMA of G (0.995) sampled,
seed 0, one thread (OMP_NUM_THREADS=1), each row trained until it has used --minutes of process CPU time
(--max-cpu-minutes). Every row has blur up/down and equalized LR (the paper's row B already has bilinear
resampling). FID and KID: ``dgm eval RUN --metric fid,kid -n 1000`` against the digits test split with dgm's
digits classifier features. One seed: no error bars; differences of a few FID points are within run-to-run noise.

Rows (the generator's switches; D and training identical):
  B  no mapping (w = normalised z), no styles (--modulation none: ProGAN pixel norm), z through a linear input,
     no noise, no mixing: a tuned-baseline-like G
  C  + mapping network (8 layers) and AdaIN styles      D  + learned constant input
  E  + noise inputs                                      F  + style mixing regularisation (p = 0.9)

    python benchmarks/stylegan_ablation.py --minutes 2
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = {
    "B": ["--mapping-layers", "0", "--modulation", "none", "--no-const-input", "--no-noise", "--style-mix-prob", "0"],
    "C": ["--mapping-layers", "8", "--no-const-input", "--no-noise", "--style-mix-prob", "0"],
    "D": ["--mapping-layers", "8", "--no-noise", "--style-mix-prob", "0"],
    "E": ["--mapping-layers", "8", "--style-mix-prob", "0"],
    "F": ["--mapping-layers", "8", "--style-mix-prob", "0.9"],
}
COMMON = ["--arch", "stylegan", "--hidden", "16", "--latent-dim", "32", "--batch-size", "32",
          "--r1-every", "4", "--mbstd", "--lr", "1e-3", "--beta1", "0", "--beta2", "0.99", "--ema-decay", "0.995",
          "--steps", "100000000", "--ckpt-every", "100000", "--n-samples", "64", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _dgm(*args, capture=False):
    return subprocess.run([sys.executable, "-m", "dgm.cli", *args], check=True, env=ENV, text=True,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL)


def _row(name: str, minutes: float, seed: int, runs: Path, out: Path, n: int, data=("--data", "digits")) -> dict:
    tag = "" if data == ("--data", "digits") else "-" + "-".join(data[1::2])
    run = runs / f"stylegan{tag}-{name}-{minutes:g}min-s{seed}"
    if not (run / "config.json").exists():
        _dgm("train", "gan", *COMMON, *data, *ROWS[name], "--max-cpu-minutes", str(minutes), "--seed", str(seed),
             "--out", str(run))
    res = json.loads(_dgm("eval", str(run), "--metric", "fid,kid", "-n", str(n), "--seed", "0",
                          capture=True).stdout)
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    out.mkdir(parents=True, exist_ok=True)
    _dgm("sample", str(run), "-n", "64", "--out", str(out / f"row-{name}-samples.png"))
    return {"row": name, "flags": " ".join(ROWS[name]), "cpu_minutes": minutes, "steps": train[-1]["step"],
            "images_per_sec": train[-1].get("images_per_sec"), "fid": res["fid"], "kid": res.get("kid"),
            "run": str(run)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="process CPU minutes of training per row")
    ap.add_argument("--rows", nargs="+", default=list(ROWS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="digits", help="dataset (default digits 8x8; fashion-mnist with --image-size 32)")
    ap.add_argument("--image-size", type=int, default=None, help="fashion-mnist / mnist: 32 pads 28x28 by 2 px")
    ap.add_argument("-n", type=int, default=1000, help="samples for FID / KID")
    ap.add_argument("--runs", default=str(HERE / "runs"))
    ap.add_argument("--out", default=str(HERE / "results" / "stylegan"))
    a = ap.parse_args()
    out, t0 = Path(a.out), time.time()
    data = ("--data", a.data) + (("--image-size", str(a.image_size)) if a.image_size else ())
    with cf.ThreadPoolExecutor(len(a.rows)) as ex:  # one process per row, each on one thread
        res = list(ex.map(lambda r: _row(r, a.minutes, a.seed, Path(a.runs), out, a.n, data), a.rows))
    last = [r for r in res if r["row"] == "F"] or res[-1:]
    for flag in ("--style-mix", "--noise-sweep"):  # the figures of the full model (row F)
        if flag == "--noise-sweep" and "--no-noise" in ROWS[last[0]["row"]]:
            continue
        _dgm("sample", last[0]["run"], flag, "--seed", "0", "--out", str(out / f"{flag[2:]}-row-{last[0]['row']}.png"))
    _dgm("sample", last[0]["run"], "-n", "64", "--truncation", "0.7", "--out", str(out / "truncation-0.7.png"))
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (cpu.ru_utime + cpu.ru_stime) / 60
    print(f"{'row':<4} {'CPU min':>7} {'steps':>6} {'FID':>7} {'KID':>8}  flags")
    for r in res:
        print(f"{r['row']:<4} {r['cpu_minutes']:>7g} {r['steps']:>6} {r['fid']:>7.2f} {r['kid']:>8.4f}  {r['flags']}")
    print(f"total process CPU minutes (training, evaluation, figures): {total:.1f}; wall {time.time() - t0:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"protocol": __doc__, "data": " ".join(data), "rows": res, "total_cpu_minutes": total},
                                                 indent=1) + "\n")
    for r in res:
        shutil.rmtree(r["run"], ignore_errors=True) if os.environ.get("DGM_BENCH_CLEAN") else None


if __name__ == "__main__":
    main()
