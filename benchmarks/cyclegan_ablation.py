"""The CycleGAN loss ablation (Zhu et al. 2017, Tables 4-5) on data with a hidden ground truth, at equal step budgets.

fashion-labels (Fashion-MNIST images <-> 3-class label maps; train X and Y from disjoint halves): GAN alone, cycle
alone, GAN + forward cycle, GAN + backward cycle, full CycleGAN, and the supervised pix2pix-style upper bound
(``--paired``: every training image with its own label map; L1 weight 100 + the same unconditional PatchGAN, no
cycle). fashion-classes sneaker,sandal: full CycleGAN and GAN alone (target-class rate, FID, cycle error).

Protocol: every run the same --steps, batch 8, seed 0 (--seed adds repeats), Adam 2e-4 (0.5, 0.999), lr constant then linear to 0 from
half the run, least squares GAN, image pool 50, lambda = 10, no identity loss (the paper's ablation on Cityscapes
used none), default nets (k = 16, 4 residual blocks, 16x16 PatchGAN). Scores: `dgm eval RUN --metric translation`
on the first 2000 test pairs (fashion-classes: the first 1000 test images of each class); FID with the shipped
fashion-mnist classifier's features. One CPU thread; process CPU seconds of training + scoring are reported.

    python benchmarks/cyclegan_ablation.py --steps 600 --only 0,1,2,3     # runs, one JSON each
    python benchmarks/cyclegan_ablation.py --steps 600 --only 4,5,6,7
    python benchmarks/cyclegan_ablation.py --table                       # table from the JSONs
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)  # the table lists every seed that was run
OUT = ROOT / "results" / "cyclegan"
LABELS = ["--data", "fashion-labels"]
CLASSES = ["--data", "fashion-classes", "--classes", "sneaker,sandal"]
ROWS = [  # (data, row name, flags)
    ("fashion-labels", "GAN alone", LABELS + ["--no-cycle-forward", "--no-cycle-backward"]),
    ("fashion-labels", "Cycle alone", LABELS + ["--no-gan"]),
    ("fashion-labels", "GAN + forward cycle", LABELS + ["--no-cycle-backward"]),
    ("fashion-labels", "GAN + backward cycle", LABELS + ["--no-cycle-forward"]),
    ("fashion-labels", "CycleGAN", LABELS),
    ("fashion-labels", "pix2pix-style (paired, upper bound)", LABELS + ["--paired", "--no-cycle-forward",
                                                                         "--no-cycle-backward"]),
    ("sneaker,sandal", "CycleGAN", CLASSES),
    ("sneaker,sandal", "GAN alone", CLASSES + ["--no-cycle-forward", "--no-cycle-backward"]),
]


def _slug(i: int, seed: int = 0) -> str:
    data, name, _ = ROWS[i]
    tag = f"{i}-{data}-{name}{f'-seed{seed}' if seed else ''}".lower()
    for a, b in ((" ", "-"), (",", "-"), ("(", ""), (")", ""), ("+", "plus")):
        tag = tag.replace(a, b)
    return tag


def run(i: int, steps: int, runs: Path, seed: int = 0) -> dict:
    from dgm.cli import main
    from dgm.metrics import evaluate

    data, name, flags = ROWS[i]
    out = runs / _slug(i, seed)
    shutil.rmtree(out, ignore_errors=True)
    cpu0, t0 = time.process_time(), time.perf_counter()
    args = ["train", "cyclegan", *flags, "--steps", str(steps), "--batch-size", "8", "--identity-weight", "0",
            "--seed", str(seed), "--out", str(out), "--no-progress", "--log-every", "50", "--ckpt-every", str(10 ** 6),
            "--eval-every", str(10 ** 6), "--n-samples", "0"]
    assert main(args) == 0, args
    cpu_train = time.process_time() - cpu0
    scores = evaluate(str(out), ["translation"], batch_size=256)
    assert main(["sample", str(out), "--translate", "test", "-n", "8", "--out",
                 str(OUT / f"{_slug(i, seed)}.png")]) == 0
    row = {"data": data, "row": name + (f" (seed {seed})" if seed else ""), "flags": flags, "steps": steps,
           "seed": seed, "batch_size": 8,
           "cpu_seconds_train": cpu_train, "cpu_seconds_total": time.process_time() - cpu0,
           "wall_seconds": time.perf_counter() - t0, "command": "dgm " + " ".join(args), **scores}
    (OUT / f"{_slug(i, seed)}.json").write_text(json.dumps(row, indent=1) + "\n")
    return row


def _f(v, digits=3):
    return "n/a" if v is None else f"{v:.{digits}f}"


def table() -> str:
    rows = [json.loads((OUT / f"{_slug(i, s)}.json").read_text()) for i in range(len(ROWS)) for s in SEEDS
            if (OUT / f"{_slug(i, s)}.json").is_file()]
    lines = ["fashion-labels (2000 test pairs): images -> labels scored directly, labels -> images by the fixed "
             "labelling of the generated image",
             "",
             "| Loss | photo->labels pixel acc | class acc | class IoU | labels->photo pixel acc | class acc | class IoU "
             "| labels->photo FID | cycle x->y->x | cycle y->x->y | CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["data"] != "fashion-labels":
            continue
        a, b = r["x_to_y"], r["y_to_x"]
        lines.append(f"| {r['row']} | {_f(a['pixel_accuracy'])} | {_f(a['class_accuracy'])} | {_f(a['class_iou'])} | "
                     f"{_f(b['pixel_accuracy'])} | {_f(b['class_accuracy'])} | {_f(b['class_iou'])} | "
                     f"{_f(b['fid'], 1)} | {_f(a['cycle_error'])} | {_f(b['cycle_error'])} | "
                     f"{r['cpu_seconds_total']:.0f} |")
    lines += ["", "fashion-classes sneaker,sandal (1000 test images per class; target-class rate by the shipped "
              "classifier)", "",
              "| Loss | sneaker->sandal target rate | FID | cycle | sandal->sneaker target rate | FID | cycle | CPU s |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["data"] == "fashion-labels":
            continue
        a, b = r["x_to_y"], r["y_to_x"]
        lines.append(f"| {r['row']} | {_f(a.get('target_class_rate'))} | {_f(a['fid'], 1)} | {_f(a['cycle_error'])} | "
                     f"{_f(b.get('target_class_rate'))} | {_f(b['fid'], 1)} | {_f(b['cycle_error'])} | "
                     f"{r['cpu_seconds_total']:.0f} |")
    total = sum(r["cpu_seconds_total"] for r in rows)
    steps = sorted({r["steps"] for r in rows})
    lines += ["", f"{len(rows)} runs, {'/'.join(map(str, steps))} steps of batch 8 each; total CPU "
              f"{total / 60:.1f} min (one thread)"]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--only", default=None, help="comma-separated row indices (default: all)")
    p.add_argument("--runs", default="runs/bench-cyclegan", help="folder for the run directories")
    p.add_argument("--seed", type=int, default=0, help="training seed (0: the table's main rows)")
    p.add_argument("--table", action="store_true", help="only print and save the table from the JSONs")
    args = p.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.table:
        only = range(len(ROWS)) if args.only is None else [int(i) for i in args.only.split(",")]
        for i in only:
            r = run(i, args.steps, Path(args.runs), args.seed)
            print(f"{ROWS[i][0]} / {ROWS[i][1]}: {r['cpu_seconds_total']:.0f} CPU s", flush=True)
    text = table()
    (OUT / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
