"""ProGAN's Table 1 (Karras et al. 2018) in its row structure, at small scale on Fashion-MNIST 32x32, on CPU.

Rows, cumulative in the paper's order (the paper's rows c, d -- small minibatch, revised training parameters -- and
e* -- minibatch discrimination -- are not run; every row uses the revised parameters below):

    a  baseline: WGAN-GP at 32x32 from the start, plain layers with He's init, no pixel norm, no mbstd
    b  + progressive growing 4 -> 8 -> 16 -> 32            (--growing)
    e  + minibatch standard deviation                      (--mbstd)
    f  + equalized learning rate                           (--eqlr)
    g  + pixelwise feature normalisation = ProGAN          (--pixelnorm)

Protocol: Fashion-MNIST train split (55000 images) zero-padded to 32x32 (``--image-size 32``), scaled to [-1, 1];
``dgm train gan --arch progan --objective wgan-gp --drift 0.001`` (lambda 10, n_critic 1, Adam lr 1e-3, betas
(0, 0.99): the paper's A.1), batch 32, --hidden H (channels 4H, 4H, 2H, H at 4, 8, 16, 32 px), z of 64 dims, seed
0; every row shows D the same number of real images (--steps x 32); growing rows spend --phase-images per fade-in
and per stabilisation (4x4 first, then 8, 16, 32; the rest of the run at 32x32). One CPU thread per process
(OMP_NUM_THREADS=1, torch threads 1); the CPU seconds are the training process's own (user + system). Evaluation:
``dgm eval RUN --metric fid,kid,swd,msssim -n N`` against the test split (10000 images, padded like the run),
FID/KID with dgm's Fashion-MNIST classifier (the 2-px border cropped off), SWD x 1e3 on 7x7 Laplacian-pyramid
patches per level (32, 16 px; appendix D), MS-SSIM of random pairs of fakes (lower = more diverse).

    # the committed table (benchmarks/README.md; about 5 CPU-minutes, but ~15x that in wall time on a loaded machine)
    python benchmarks/progan_ablation.py --steps 200 --phase-images 800 --hidden 8 --n-eval 500
    # the defaults: about 20 CPU-minutes (not run to the end here: the shared machine was ~13x oversubscribed)
    python benchmarks/progan_ablation.py
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = [  # (row, label, switches)
    ("a", "baseline (WGAN-GP, no growing)", ["--no-growing", "--no-eqlr", "--no-pixelnorm"]),
    ("b", "+ progressive growing", ["--no-eqlr", "--no-pixelnorm"]),
    ("e", "+ minibatch stddev", ["--no-eqlr", "--no-pixelnorm", "--mbstd"]),
    ("f", "+ equalized learning rate", ["--no-pixelnorm", "--mbstd"]),
    ("g", "+ pixelwise normalisation (ProGAN)", ["--mbstd"]),
]
COMMON = ["--arch", "progan", "--data", "fashion-mnist", "--image-size", "32", "--objective", "wgan-gp",
          "--drift", "0.001", "--gp-weight", "10", "--n-critic", "1", "--lr", "0.001", "--beta1", "0",
          "--beta2", "0.99", "--batch-size", "32", "--latent-dim", "64", "--seed", "0", "--n-samples", "64",
          "--eval-every", "0", "--no-progress"]


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(cmd, env) -> tuple:
    """(completed process, child CPU seconds, wall seconds) of one subprocess."""
    c0, t0 = _child_cpu(), time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return p, _child_cpu() - c0, time.perf_counter() - t0


def _row(row, label, switches, a, env) -> dict:
    run = Path(a.runs) / f"progan-{row}"
    shutil.rmtree(run, ignore_errors=True)
    train = [sys.executable, "-m", "dgm.cli", "train", "gan", *COMMON, *switches, "--hidden", str(a.hidden),
             "--steps", str(a.steps), "--phase-images", str(a.phase_images), "--ckpt-every", str(a.steps),
             "--device", a.device, "--out", str(run)]
    p, cpu, wall = _timed(train, env)
    out = {"row": row, "label": label, "switches": " ".join(switches), "train_cpu_s": round(cpu, 1),
           "train_wall_s": round(wall, 1), "images_shown": a.steps * 32}
    if p.returncode != 0:
        out["error"] = (p.stderr.strip().splitlines() or ["?"])[-1]
        return out
    ev = [sys.executable, "-m", "dgm.cli", "eval", str(run), "--metric", "fid,kid,swd,msssim", "-n", str(a.n_eval),
          "--device", a.device]
    p, ecpu, _ = _timed(ev, env)
    if p.returncode != 0:
        out["error"] = (p.stderr.strip().splitlines() or ["?"])[-1]
        return out
    res = json.loads(p.stdout.strip().splitlines()[-1])
    out.update({k: res[k] for k in ("fid", "kid", "swd", "swd_levels", "msssim") if k in res})
    out["eval_cpu_s"] = round(ecpu, 1)
    grid = sorted((run / "samples").glob("step-*.png"))[-1]
    Path(a.out).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(grid, Path(a.out) / f"samples-{row}.png")
    out["grid"] = os.path.relpath(Path(a.out) / f"samples-{row}.png", HERE.parent)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000, help="D updates (= images shown / 32) per row")
    ap.add_argument("--phase-images", type=int, default=4000, help="images per fade-in and per stabilisation")
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--n-eval", type=int, default=2000, help="fakes drawn for the metrics")
    ap.add_argument("--rows", default="abefg")
    ap.add_argument("--device", default="cpu", help="cpu (the table) or cuda (benchmarks/gpu_checks.sh)")
    ap.add_argument("--runs", default=str(HERE / "runs"))
    ap.add_argument("--out", default=str(HERE / "results" / "progan"))
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    c0 = _child_cpu()
    res = [_row(r, lbl, sw, a, env) for r, lbl, sw in ROWS if r in a.rows]
    total = _child_cpu() - c0
    print(f"{'row':<4}{'configuration':<38}{'CPU s':>7}{'FID':>8}{'KID':>8}{'SWD 32':>8}{'SWD 16':>8}{'SWD avg':>8}"
          f"{'MS-SSIM':>8}")
    for r in res:
        if "error" in r:
            print(f"{r['row']:<4}{r['label']:<38}{r['train_cpu_s']:>7.0f}  failed: {r['error']}")
            continue
        lv = r["swd_levels"]
        print(f"{r['row']:<4}{r['label']:<38}{r['train_cpu_s']:>7.0f}{r['fid']:>8.1f}{r['kid']:>8.3f}"
              f"{lv.get('32', float('nan')):>8.1f}{lv.get('16', float('nan')):>8.1f}{r['swd']:>8.1f}"
              f"{r['msssim']:>8.3f}")
    print(f"total CPU: {total / 60:.1f} min")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    blob = {"protocol": __doc__, "args": vars(a), "total_cpu_min": round(total / 60, 2), "rows": res}
    (Path(a.out) / "results.json").write_text(json.dumps(blob, indent=1) + "\n")


if __name__ == "__main__":
    main()
