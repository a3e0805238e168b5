"""Any-order autoregressive models at tiny fixed budgets: the two tables of seed 000 ("LMConv: implementation and
evaluation", Jain et al. 2020) rerun on binarized digits and binarized Fashion-MNIST, plus LMConv's cost.

Protocol
- Data: fixed binarization at half range (digits level >= 8 of 0..16, Fashion-MNIST value >= 128 of 0..255);
  the splits of `dgm list datasets`. Test NLLs on the first N test images (digits: all 360; Fashion-MNIST: the first 300).
- Training: `dgm train MODEL --steps S --batch-size B` with library defaults otherwise (Adam lr 1e-3, seed 0),
  one CPU thread per run, no early stopping; the engine's end-of-run validation is skipped (this script evaluates
  the test images itself; an 8-order ensemble over all 5000 Fashion-MNIST validation images would cost more than
  the training). Budgets (STEPS) are tiny next to the paper's (hundreds of epochs on a GPU).
- (a) whole-image NLL, nats per image and bits/dim: NADE, MADE with 1 and 32 orders (32: the log-mean-exp over its
  orders, as the MADE paper evaluates), PixelCNN, Gated PixelCNN, LMConv S-curve with 1 order and with 8 (one
  order, and the 8-order ensemble).
- (b) completion NLL of the hidden half given the observed top / left / bottom half, in nats: LMConv 8 S-curve
  orders with the 1 and 2 maximum-context orders (log-mean-exp of the two), against the raster Gated PixelCNN's
  honest value (``completion_nll``: raster conditionals of the hidden pixels, which see only the observed pixels
  earlier in raster order: exact for "top", unconditional for "bottom").
- (c) LMConv training step (8 S-curve orders, one per example) against a plain masked-convolution network of the
  same width and depth (the same model with every locally masked layer replaced by a fixed raster-masked
  ``conv2d``) and against the paper's unfold formulation, on 28x28 batches of 32, one thread, in one process:
  seconds per step and the bytes autograd keeps for the backward pass (unique storages seen by
  ``saved_tensors_hooks``).
- (d) completions of Fashion-MNIST test images (observed top and left halves; 3 completions under each of the 2
  maximum-context orders) as a PNG.

    python benchmarks/anyorder_tables.py                     # all parts; runs are reused from benchmarks/runs/
    python benchmarks/anyorder_tables.py --parts c           # only the cost comparison
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
STEPS = {"digits": (400, 64), "fashion-mnist": (200, 32), "mnist": (2000, 64)}   # (steps, batch size)
N_TEST = {"digits": 360, "fashion-mnist": 300, "mnist": 10000}
ROWS = [  # (row label, model, extra flags)
    ("NADE", "nade", ["--orders", "1"]),
    ("MADE (1 order)", "made", ["--orders", "1"]),
    ("MADE (32 orders)", "made", ["--orders", "32"]),
    ("PixelCNN", "pixelcnn", []),
    ("Gated PixelCNN", "gated-pixelcnn", []),
    ("LMConv S-curve (1 order)", "lmconv", ["--orders", "1"]),
    ("LMConv S-curve (8 orders)", "lmconv", ["--orders", "8"]),
]
REGIONS = ("top", "left", "bottom")
# runs train in a child process with the engine's end-of-run validation switched off (see the protocol)
_CHILD = ("import sys; from dgm.training import engine; engine.Trainer.evaluate = lambda self: {}; "
          "from dgm.cli import main; sys.exit(main(sys.argv[1:]))")


def _run_dir(runs: Path, data: str, label: str) -> Path:
    return runs / f"{data}-{label.lower().replace(' ', '-').replace('(', '').replace(')', '')}"


def _train(model: str, flags, data: str, out: Path, args) -> dict:
    """Train one run in a child process on one thread; its CPU seconds from the kernel (wait4)."""
    steps, batch = STEPS[data]
    steps = args.steps or steps
    if (out / "checkpoints").exists():
        return {"run": str(out), "cpu_seconds": json.loads((out / "bench_cpu.json").read_text())["cpu_seconds"]}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", _CHILD, "train", model, "--data", data, "--binarize", "--steps", str(steps),
           "--batch-size", str(batch), "--out", str(out), "--seed", "0", "--n-samples", "0", "--no-progress",
           "--ckpt-every", "1000000", "--device", args.device, *flags]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd[3:])} failed: {proc.stderr.read().decode()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    (out / "bench_cpu.json").write_text(json.dumps({"cpu_seconds": cpu}))
    return {"run": str(out), "cpu_seconds": cpu}


def _test_images(data: str, args) -> torch.Tensor:
    from dgm.data import load_dataset

    x, _ = load_dataset(data, "test", data_dir=args.data_dir, binarize="fixed").tensors()
    return x[:N_TEST[data]]


@torch.no_grad()
def _batched(fn, x, bs=100) -> torch.Tensor:
    return torch.cat([fn(x[i:i + bs]) for i in range(0, x.shape[0], bs)])


@torch.no_grad()
def _submit(data: str, args, runs: Path, pool) -> dict:
    """Start the training runs of one dataset: {row label: future}."""
    from dgm.models import MODELS

    futs = {}
    for label, model, flags in ROWS:
        if model not in MODELS.names():
            print(f"skipped {label}: no model named {model!r} in this checkout", flush=True)
            continue
        futs[label] = pool.submit(_train, model, flags, data, _run_dir(runs, data, label), args)
    return futs


@torch.no_grad()
def _tables(data: str, args, futs: dict) -> dict:
    """Parts (a) and (b) for one dataset, each run evaluated as soon as it has trained."""
    import dgm
    from dgm.errors import DgmError
    from dgm.nn.orders import max_context_orders, region_mask

    x = _test_images(data, args).to(args.device)
    dims = x[0].numel()
    whole, completion = [], []
    for label, model, flags in ROWS:
        if label not in futs:
            whole.append({"row": label, "missing": True})
            continue
        info = futs[label].result()
        m = dgm.load(info["run"], device=args.device).eval()
        t = time.process_time()
        row = {"row": label, "model": model, "flags": " ".join(flags), **info, "steps": args.steps or STEPS[data][0]}
        n = getattr(m, "order_table", torch.zeros(1)).shape[0]
        nll = -_batched(lambda b: m.log_prob(b), x).mean().item()
        if n > 1:
            row["nll_one_order"] = -_batched(lambda b: m.log_prob(b, order=0), x).mean().item()
        row.update(nll_nats=nll, bits_per_dim=nll / (dims * math.log(2)))
        if model in ("lmconv", "gated-pixelcnn") and (model != "lmconv" or n == 8):
            for region in REGIONS:
                obs = region_mask(region, x.shape[2], x.shape[3])
                ks = (None,) if model != "lmconv" else (1, 2)
                for k in ks:
                    orders = None if k is None else max_context_orders([o.cpu() for o in m.orders], obs, k)
                    try:
                        v = _batched(lambda b: m.completion_nll(b, obs, orders=orders), x).mean().item()
                    except DgmError as e:
                        v = str(e)
                    completion.append({"row": label + ("" if k is None else f", {k} max-context order(s)"),
                                       "region": region, "orders": orders, "nll_nats": v})
        row["eval_cpu_seconds"] = time.process_time() - t
        whole.append(row)
        print(f"{data}: {label}: {row['nll_nats']:.2f} nats", flush=True)
    return {"whole_image": whole, "completion": completion, "n_test": x.shape[0]}


# -- (c) cost ----------------------------------------------------------------------------------------------------------
def _plain_forward(self, x, masks):
    """A fixed raster-masked conv2d with this layer's weight: the mask of an interior pixel of the raster order."""
    k, d = self.kernel_size[0], self.dilation[0]
    return F.conv2d(x, self.weight * self._raster, self.bias, padding=k // 2 * d, dilation=d)


def _unfold_forward(self, x, masks):
    from dgm.nn.lmconv import unfold_reference

    return unfold_reference(self, x, masks)


def _saved_bytes(fn) -> int:
    seen = {}

    def pack(t):
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = fn()
    loss.backward()
    return sum(seen.values())


def _cost(args) -> dict:
    from dgm.models import build_model
    from dgm.nn.lmconv import LocallyMaskedConv2d, tap_masks

    torch.manual_seed(0)
    h = w = 28
    lm = build_model("lmconv", dict(height=h, width=w, levels=2, orders=8, order_family="s-curve"))
    plain = build_model("lmconv", dict(height=h, width=w, levels=2, orders=1, order_family="raster"))
    unf = build_model("lmconv", dict(height=h, width=w, levels=2, orders=8, order_family="s-curve"))
    for net, fwd in ((plain, _plain_forward), (unf, _unfold_forward)):
        for mod in net.modules():
            if isinstance(mod, LocallyMaskedConv2d):
                k, d = mod.kernel_size[0], mod.dilation[0]
                centre = mod is not net.inp
                mod._raster = tap_masks(torch.arange(h * w), h, w, k, d, centre).mask[:, h // 2, w // 2].view(k, k)
                mod.forward = types.MethodType(fwd, mod)
    x = torch.randint(0, 2, (32, 1, h, w)).float()
    step = {name: (lambda m=m: -m.training_log_prob(x).mean()) for name, m in
            (("lmconv", lm), ("plain", plain), ("unfold", unf))}
    secs = {k: [] for k in step}
    for rep in range(args.cost_reps + 1):
        for name, f in step.items():  # interleaved, so drift in machine load hits all three alike
            torch.manual_seed(rep)
            t = time.process_time()
            f().backward()
            if rep:
                secs[name].append(time.process_time() - t)
    mem = {}
    for name, f in step.items():
        torch.manual_seed(0)
        mem[name] = _saved_bytes(f)
    med = {k: sorted(v)[len(v) // 2] for k, v in secs.items()}
    return {"batch": 32, "size": "28x28", "config": "hidden 32, layers 6, kernel 3, dilations 1,2,4",
            "step_cpu_seconds_median": med, "saved_bytes": mem,
            "time_ratio_lmconv_over_plain": med["lmconv"] / med["plain"],
            "time_ratio_unfold_over_plain": med["unfold"] / med["plain"],
            "memory_ratio_lmconv_over_plain": mem["lmconv"] / mem["plain"],
            "memory_ratio_unfold_over_plain": mem["unfold"] / mem["plain"]}


# -- (d) figure ---------------------------------------------------------------------------------------------------------
@torch.no_grad()
def _figure(args, runs: Path) -> str:
    import dgm
    from dgm.nn.orders import max_context_orders, region_mask
    from dgm.viz import save_grid

    data = args.figure_data
    m = dgm.load(_run_dir(runs, data, ROWS[-1][0]), device=args.device).eval()
    x = _test_images(data, args)[:4].to(args.device)
    reps = 3   # completions per order: each image three times, different noise
    rows = []
    for region in ("top", "left"):
        obs = region_mask(region, x.shape[2], x.shape[3])
        shown = torch.where(obs.to(x.device), x, torch.full_like(x, 0.5))
        cols = [x, shown]
        for o in max_context_orders([o.cpu() for o in m.orders], obs, 2):
            perm = m.completion_orders(obs, orders=[o])[0]
            done = m.complete(x.repeat(reps, 1, 1, 1), obs, order=perm, generator=torch.Generator().manual_seed(o))
            cols += list(done.view(reps, *x.shape).unbind(0))
        rows.append(torch.stack(cols, 1))   # (4, 2 + 2 * reps, 1, H, W)
    grid = torch.cat(rows).flatten(0, 1)
    path = save_grid(grid.float(), Path(args.json).parent / f"anyorder_completions_{data}.png", nrow=2 + 2 * reps)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["fashion-mnist", "digits"])
    ap.add_argument("--parts", default="abcd", help="any of a, b (with a), c, d")
    ap.add_argument("--jobs", type=int, default=2, help="training runs in parallel, one thread each")
    ap.add_argument("--steps", type=int, default=None, help="override STEPS for every dataset")
    ap.add_argument("--cost-reps", type=int, default=5)
    ap.add_argument("--figure-data", default="fashion-mnist")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--runs", default=str(HERE / "runs" / "anyorder"))
    ap.add_argument("--json", default=str(HERE / "results" / "anyorder_tables.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    runs = Path(args.runs)
    t0 = time.process_time()
    out = {"protocol": __doc__.strip(), "steps": {d: (args.steps or STEPS[d][0], STEPS[d][1]) for d in args.datasets}}
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        futs = {d: _submit(d, args, runs, pool) for d in args.datasets} if "a" in args.parts else {}
        if "c" in args.parts:   # measured while the runs train (CPU time of this process only)
            out["cost"] = _cost(args)
            c = out["cost"]
            print(f"step CPU s (median): {c['step_cpu_seconds_median']}; saved bytes: {c['saved_bytes']}", flush=True)
        if futs:
            out["tables"] = {d: _tables(d, args, futs[d]) for d in args.datasets}
    if "d" in args.parts:
        out["figure"] = _figure(args, runs)
    train_cpu = sum(r.get("cpu_seconds", 0) for t in out.get("tables", {}).values() for r in t["whole_image"])
    out["cpu_seconds"] = {"this_process": time.process_time() - t0, "training_children": train_cpu}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    _print(out)
    print(f"wrote {args.json}")


def _print(out: dict) -> None:
    for data, t in out.get("tables", {}).items():
        steps, batch = out["steps"][data]
        print(f"\n{data}: whole-image test NLL ({t['n_test']} test images; {steps} steps of batch {batch})")
        print(f"| model | train CPU s | NLL (nats) | bits/dim | one order (nats) |\n|---|---:|---:|---:|---:|")
        for r in t["whole_image"]:
            if r.get("missing"):
                print(f"| {r['row']} | not run | | | |")
                continue
            one = f"{r['nll_one_order']:.2f}" if "nll_one_order" in r else ""
            print(f"| {r['row']} | {r['cpu_seconds']:.0f} | {r['nll_nats']:.2f} | {r['bits_per_dim']:.4f} | {one} |")
        print(f"\n{data}: completion NLL of the hidden half (nats)\n| model | T | L | B |\n|---|---:|---:|---:|")
        names = list(dict.fromkeys(c["row"] for c in t["completion"]))
        for name in names:
            v = {c["region"]: c["nll_nats"] for c in t["completion"] if c["row"] == name}
            print(f"| {name} | " + " | ".join(f"{v[r]:.2f}" if isinstance(v.get(r), float) else str(v.get(r))
                                             for r in REGIONS) + " |")
    if "cost" in out:
        c = out["cost"]
        s, b = c["step_cpu_seconds_median"], c["saved_bytes"]
        print("\ncost of one training step (batch 32, 28x28, one thread)\n| network | CPU s/step | saved for backward (MB) |"
              "\n|---|---:|---:|")
        for k, name in (("plain", "plain masked conv (raster)"), ("lmconv", "LMConv, tap sum (ours)"),
                        ("unfold", "LMConv, unfolded patches (paper)")):
            print(f"| {name} | {s[k]:.3f} | {b[k] / 2**20:.1f} |")
    print(f"\nCPU seconds: {out['cpu_seconds']}")


if __name__ == "__main__":
    main()
