"""Sampling speed: naive (one network pass per element) against cached (per-layer caches, Ramachandran et al. 2017).

Protocol: 16 images per draw; `pixelcnn` and `gated-pixelcnn` at their default sizes (hidden 32, 6 layers, first
kernel 7, kernel 3) with their initial weights (seed 0, untrained: the time of a draw does not depend on the
weights); shapes 8x8 (digits, 17 levels), 16x16 (binary), 28x28 (Fashion-MNIST shape, binary, as in
nll_budget.py), 32x32x3 (CIFAR-10 shape, 256 levels). Both methods take the same uniforms; where the naive draw is
measured in full the benchmark checks that both give the same images. Times are process CPU seconds and wall
seconds of one process at a fixed torch thread count; ratios are taken within one run. A naive draw runs the
network once per element whatever the element, so where measuring it in full costs too much (--full-limit
elements) the naive time is measured over the first --partial-steps elements (the others observed, which naive
sampling skips) and scaled to all elements; such rows are marked "extrapolated".

    python benchmarks/sampling_speed.py --threads 1 --json benchmarks/results/sampling_speed.json
    python benchmarks/sampling_speed.py --models nade made --shapes 8x8 16x16 28x28 --json benchmarks/results/sampling_speed_anyorder.json

`nade` and `made` (default sizes: 500 hidden units, one hidden layer for MADE, one order) take the same protocol;
their cached draws walk the order once (NADE: the running hidden pre-activation; MADE: the hidden units already
final and the first layer's running pre-activation) instead of one full pass per pixel. `lmconv` (default size:
hidden 32, 6 gated blocks, dilations 1, 2, 4, 8 S-curve orders, drawn under order 0) likewise: its cached draw
computes every layer at one location per step, from windows of the layer maps already computed.

    python benchmarks/sampling_speed.py --models lmconv --shapes 8x8 16x16 28x28 --json benchmarks/results/sampling_speed_lmconv.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from dgm.models.base import build_model

SHAPES = {"8x8": (1, 8, 8, 17), "16x16": (1, 16, 16, 2), "28x28": (1, 28, 28, 2), "32x32x3": (3, 32, 32, 256)}
MODELS = ("pixelcnn", "gated-pixelcnn")
OTHER_MODELS = ("nade", "made", "lmconv")  # on request (--models nade made lmconv): greyscale only; see _cached_steps
GREYSCALE = ("nade", "made", "lmconv")
N = 16


def _timed(fn):
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def _row(name: str, shape: str, threads: int, full_limit: int, partial_steps: int) -> dict:
    ch, h, w, k = SHAPES[shape]
    torch.manual_seed(0)
    model = build_model(name, dict(channels=ch, height=h, width=w, levels=k)).eval()
    noise = torch.rand((N, ch, h, w), generator=torch.Generator().manual_seed(1))
    elements = ch * h * w
    cached, c_cpu, c_wall = _timed(lambda: model.sample(N, noise=noise, method="cached"))
    row = {"model": name, "shape": shape, "levels": k, "elements": elements, "threads": threads, "n": N,
           "cached_cpu_s": c_cpu, "cached_wall_s": c_wall}
    # the first `partial_steps` elements: the rest are observed, and naive sampling skips them
    steps = min(partial_steps, elements)
    observed = torch.ones(ch * h * w, dtype=torch.bool)
    observed[:steps] = False  # the order is raster with channels innermost: (i, j, c) flattened
    observed = observed.view(h, w, ch).permute(2, 0, 1)
    part, p_cpu, p_wall = _timed(lambda: model.complete(cached, observed, noise=noise, method="naive"))
    p_cpu, p_wall = p_cpu * elements / steps, p_wall * elements / steps
    row.update(naive_cpu_s_from_first_steps=p_cpu, naive_wall_s_from_first_steps=p_wall, first_steps=steps)
    if elements <= full_limit:
        naive, n_cpu, n_wall = _timed(lambda: model.sample(N, noise=noise, method="naive"))
        row.update(naive_steps_timed=elements, extrapolated=False, same_images=bool(torch.equal(naive, cached)))
    else:
        n_cpu, n_wall = p_cpu, p_wall
        row.update(naive_steps_timed=steps, extrapolated=True, same_images=bool(torch.equal(part, cached)))
    row.update(naive_cpu_s=n_cpu, naive_wall_s=n_wall, speedup_cpu=n_cpu / c_cpu, speedup_wall=n_wall / c_wall,
               naive_ms_per_element=1e3 * n_wall / elements, cached_ms_per_element=1e3 * c_wall / elements)
    return row


def _table(rows) -> str:
    out = ["| model | shape | elements | threads | naive s (CPU / wall) | cached s (CPU / wall) | "
           "speed-up CPU (wall) | naive CPU ms/element | cached CPU ms/element | same images |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        star = f" ({r['naive_steps_timed']} steps timed)" if r["extrapolated"] else ""
        out.append(f"| {r['model']} | {r['shape']} | {r['elements']} | {r['threads']} | "
                   f"{r['naive_cpu_s']:.1f} / {r['naive_wall_s']:.1f}{star} | "
                   f"{r['cached_cpu_s']:.2f} / {r['cached_wall_s']:.2f} | **{r['speedup_cpu']:.0f}x** "
                   f"({r['speedup_wall']:.0f}x) | {1e3 * r['naive_cpu_s'] / r['elements']:.1f} | "
                   f"{1e3 * r['cached_cpu_s'] / r['elements']:.2f} | "
                   f"{'yes' if r['same_images'] else 'NO'}{' (timed steps)' if r['extrapolated'] else ''} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS + OTHER_MODELS))
    ap.add_argument("--full-limit", type=int, default=784, help="measure naive in full up to this many elements")
    ap.add_argument("--full-limit-multi", type=int, default=256, help="the same for more than one thread")
    ap.add_argument("--partial-steps", type=int, default=96, help="naive steps timed where not measured in full")
    ap.add_argument("--json", default=None)
    ap.add_argument("--table-from", default=None, metavar="JSON", help="only print the table of an earlier run")
    args = ap.parse_args()
    if args.table_from:
        print(_table(json.loads(Path(args.table_from).read_text())["rows"]))
        return
    torch.set_num_threads(args.threads[0])
    for name in args.models:  # warm-up: the first call of a process pays one-off set-up costs
        _row(name, "8x8", 1, 64, 8)
    rows = []
    result = {"protocol": __doc__.split("\n\n")[1], "torch": torch.__version__, "machine": platform.machine(),
              "cpus": os.cpu_count(), "load_average_before": os.getloadavg(), "rows": rows}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for shape in args.shapes:
            for name in args.models:
                if name in GREYSCALE and SHAPES[shape][0] > 1:
                    print(f"skipped: {name} is greyscale only, {shape} has {SHAPES[shape][0]} channels", flush=True)
                    continue
                limit = args.full_limit if threads == 1 else args.full_limit_multi
                rows.append({**_row(name, shape, threads, limit, args.partial_steps), "load_average": os.getloadavg()})
                print(_table(rows[-1:]).splitlines()[-1], flush=True)
                result["load_average_after"] = os.getloadavg()
                if args.json:  # after every row, so that an interrupted run keeps what it measured
                    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(_table(rows))
    print(f"load average (1, 5, 15 min) before {result['load_average_before']}, after {result['load_average_after']}")


if __name__ == "__main__":
    main()
