"""BigGAN's ablation table (Brock et al. 2019, Table 1) at small scale on Fashion-MNIST, plus DCGAN / SAGAN / BigGAN
side by side, at equal CPU budgets.

Protocol: Fashion-MNIST train split at its native 28x28 (not padded to 32: `--image-size 32` lands with another
branch), scaled to [-1, 1], unconditional (the class-conditional rows need the projection D of issue 16: the
"+ shared embedding" row is not run). Every run: one CPU thread, seed 0, `--max-cpu-minutes M` of process CPU
time (the same for every row, so a larger batch or width buys fewer steps), z of 64 dims, hinge loss, TTUR
(Adam 4e-4 / 1e-4, betas (0, 0.9)), spectral norm in G and D, self-attention at the 14x14 map (--attn-res 16).
Rows, each adding one change to the previous as in the paper's table:

  1 baseline   --arch biggan --no-skip-z --ortho-reg 0, batch 16, --hidden 8 (residual SAGAN-like G/D)
  2 + batch    batch 64 (x4; the paper: 256 -> 2048)
  3 + width    --hidden 16 (x2; the paper: 64 -> 96)
  - + shared   not run (unconditional)
  4 + skip-z   hierarchical latents
  5 + ortho    orthogonal regularisation 1e-4 (the full BigGAN recipe here)

and for the architecture comparison, at row 5's batch and width: DCGAN (non-saturating, its paper's Adam) and
SAGAN (DCGAN-shaped with attention). Scores: `dgm eval RUN --metric fid,kid,is -n N` (dgm's Fashion-MNIST
classifier features, N samples against the 10,000 test images; "IS" is the classifier's inception score).
Speed: training images per CPU second (one D and one G update on a batch of 64, hinge loss) and sampling images
per CPU second, per architecture, measured in this process on one thread (ratios within one run).

    python benchmarks/biggan_ablation.py --minutes 1 -n 1000 --parallel 7   # what ran (a machine under heavy load)
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
COMMON = ["--objective", "hinge", "--attn-res", "16"]
ROWS = [  # (name, arch, batch, hidden, extra flags)
    ("1 baseline (SAGAN-like residual)", "biggan", 16, 8, ["--no-skip-z", "--ortho-reg", "0"]),
    ("2 + batch x4", "biggan", 64, 8, ["--no-skip-z", "--ortho-reg", "0"]),
    ("3 + width x2", "biggan", 64, 16, ["--no-skip-z", "--ortho-reg", "0"]),
    ("4 + skip-z", "biggan", 64, 16, ["--ortho-reg", "0"]),
    ("5 + ortho reg (BigGAN)", "biggan", 64, 16, []),
    ("SAGAN", "sagan", 64, 16, []),
    ("DCGAN", "dcgan", 64, 16, None),
]


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(i: int, row, minutes: float, n: int, runs: Path, out: Path, device: str = "cpu") -> dict:
    name, arch, batch, hidden, extra = row
    run = runs / f"biggan-ablation-{i}-{minutes:g}min"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    flags = ["--arch", arch] + (COMMON + extra if extra is not None else [])
    if not (run / "config.json").exists():
        cmd = [sys.executable, "-m", "dgm.cli", "train", "gan", *flags, "--data", "fashion-mnist", "--hidden",
               str(hidden), "--batch-size", str(batch), "--steps", "100000000", "--max-cpu-minutes", str(minutes),
               "--seed", "0", "--ckpt-every", "100000", "--n-samples", "64", "--no-progress", "--out", str(run),
               "--device", device]
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    ev = subprocess.run([sys.executable, "-m", "dgm.cli", "eval", str(run), "--metric", "fid,kid,is", "-n", str(n),
                         "--seed", "0", "--device", device], check=True, env=env, capture_output=True, text=True)
    scores = json.loads(ev.stdout.strip().splitlines()[-1])
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    out.mkdir(parents=True, exist_ok=True)
    grid = sorted((run / "samples").glob("*.png"))[-1]
    shutil.copyfile(grid, out / f"samples-{i}.png")
    if arch != "dcgan":
        subprocess.run([sys.executable, "-m", "dgm.cli", "sample", str(run), "--attention-maps", "-n", "4",
                        "--out", str(out / f"attention-{i}.png")], check=True, env=env, stdout=subprocess.DEVNULL)
    return {"row": name, "arch": arch, "batch": batch, "hidden": hidden, "flags": flags, "cpu_minutes": minutes,
            "steps": train[-1]["step"] if train else 0, "images_seen": (train[-1]["step"] if train else 0) * batch,
            **{k: scores[k] for k in scores if k in ("fid", "kid", "is")}, "run": str(run)}


def speed(batch: int = 64, hidden: int = 16, repeats: int = 3) -> dict:
    """Training and sampling images per CPU second per architecture, one thread, this process."""
    import torch

    from dgm.models.gan import GAN, GANConfig
    from dgm.objectives import OBJECTIVES

    torch.set_num_threads(1)
    hinge = OBJECTIVES.get("hinge")
    out = {}
    for arch in ("dcgan", "sagan", "biggan"):
        torch.manual_seed(0)
        m = GAN(GANConfig(arch=arch, objective="hinge", height=28, width=28, hidden=hidden, latent_dim=64))
        og = torch.optim.Adam(m.generator.parameters(), 1e-4, betas=(0.0, 0.9))
        od = torch.optim.Adam(m.discriminator.parameters(), 4e-4, betas=(0.0, 0.9))
        real = torch.rand(batch, 1, 28, 28) * 2 - 1

        def update():
            fake = m.generator(torch.randn(batch, 64))
            od.zero_grad()
            hinge.d(m.discriminator(real), m.discriminator(fake.detach())).backward()
            od.step()
            og.zero_grad()
            hinge.g(m.discriminator(fake)).backward()
            og.step()

        update()  # warm-up
        t = time.process_time()
        for _ in range(repeats):
            update()
        train = batch * repeats / (time.process_time() - t)
        m.eval()
        with torch.no_grad():
            m.generator(torch.randn(256, 64))
            t = time.process_time()
            for _ in range(repeats):
                m.generator(torch.randn(256, 64))
        sample = 256 * repeats / (time.process_time() - t)
        params = sum(p.numel() for p in m.generator.parameters()), sum(p.numel() for p in m.discriminator.parameters())
        out[arch] = {"train_images_per_cpu_s": train, "sample_images_per_cpu_s": sample, "params_g_d": params}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0, help="process CPU minutes of training per row")
    ap.add_argument("-n", type=int, default=1000, help="samples per evaluation")
    ap.add_argument("--rows", default="all", help="comma-separated row numbers (1-based) or all")
    ap.add_argument("--parallel", type=int, default=4, help="runs at a time (each on one thread)")
    ap.add_argument("--device", default="cpu", help="cpu (the table) or cuda (benchmarks/gpu_checks.sh)")
    ap.add_argument("--runs", default=str(HERE / "runs"))
    ap.add_argument("--out", default=str(HERE / "results" / "biggan"))
    a = ap.parse_args()
    t0, c0 = time.process_time(), _cpu_children()
    pick = range(len(ROWS)) if a.rows == "all" else [int(r) - 1 for r in a.rows.split(",")]
    with cf.ThreadPoolExecutor(a.parallel) as ex:
        res = list(ex.map(lambda i: _run(i + 1, ROWS[i], a.minutes, a.n, Path(a.runs), Path(a.out), a.device),
                           pick))
    sp = speed()
    cpu = (time.process_time() - t0) + (_cpu_children() - c0)
    print(f"{'row':<34} {'batch':>5} {'hidden':>6} {'steps':>6} {'FID':>7} {'KID':>7} {'IS':>6}")
    for r in res:
        print(f"{r['row']:<34} {r['batch']:>5} {r['hidden']:>6} {r['steps']:>6} {r.get('fid', float('nan')):>7.2f} "
              f"{r.get('kid', float('nan')):>7.4f} {r.get('is', float('nan')):>6.2f}")
    for arch, s in sp.items():
        print(f"{arch:<8} train {s['train_images_per_cpu_s']:.0f} img/CPU-s, sample {s['sample_images_per_cpu_s']:.0f} "
              f"img/CPU-s, params G/D {s['params_g_d']}")
    print(f"whole script: {cpu / 60:.1f} CPU-minutes")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "results.json").write_text(json.dumps({"protocol": __doc__, "rows": res, "speed": sp,
                                                           "cpu_minutes_total": cpu / 60}, indent=1) + "\n")


if __name__ == "__main__":
    main()
