"""Training speed: eager float32 against --compile and against bf16 autocast (issue 33, "Speed in practice").

Protocol: for each model, its default config (`dgm train MODEL` with no model options) on the built-in digits at the
default batch of 64 (gated-pixelcnn and pixelcnn with --binarize, vae with --binarize, gan on the 17 grey levels),
seed 0, one thread (--threads 1) unless --threads N. Each (model, mode) is one `dgm train` in a fresh process of its
own: --warmup steps, then --steps steps measured, metrics logged every --warmup steps; images/s is the measured
steps' images over the wall time between the log row at the end of the warm-up and the last one (the engine's
`time` column). The first-step cost of compiling is the warm-up's wall time less --warmup steady steps; inductor's
on-disk cache is a fresh folder for each process, so it is the cold cost a user pays the first time. CPU seconds are
the child process's (getrusage), data loading, imports and the final validation included.

Inference (--parts inference): what `dgm sample/eval --compile` compile, eager against compiled wall time per call of
the same default configs (initial weights, batch 64, no gradients): log_prob, and sample(64) for one-pass samplers.

Modes: eager (float32), compile (`--compile`: torch.compile of the step's forward and backward, inductor), bf16
(`--amp`'s autocast to bfloat16; on a CPU without native bf16 dgm refuses --amp, so this benchmark switches the
refusal off in its worker process to measure what it refuses). Ratios are taken within one run of this script.

    python benchmarks/amp_compile.py --threads 1 --json benchmarks/results/amp_compile.json
    python benchmarks/amp_compile.py --device cuda --threads 1 --json /tmp/gpu/amp_compile.json  # gpu_checks.sh
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    "gated-pixelcnn": ["--data", "digits", "--binarize"],
    "pixelcnn": ["--data", "digits", "--binarize"],
    "vae": ["--data", "digits", "--binarize"],
    "gan": ["--data", "digits"],
}
MODES = ("eager", "compile", "bf16")
MODE_FLAGS = {"eager": [], "compile": ["--compile"], "bf16": ["--amp"]}


def _worker(argv) -> int:
    """One `dgm train` in this process; with --amp on a CPU, the native-bf16 refusal is switched off first."""
    if "--amp" in argv:
        from dgm import devices

        devices.cpu_native_bf16 = lambda: True  # measure what dgm refuses on this CPU
    from dgm.cli import main

    return main(argv)


#: the data fields of each model's runs above (digits, binarized or 17 levels)
SPECS = {"gated-pixelcnn": 2, "pixelcnn": 2, "vae": 2, "gan": 17}


def _inference_worker(model_name: str, calls: int, device: str) -> dict:
    """What `dgm eval`/`dgm sample --compile` compile: eager against compiled wall time per call, at the default
    config with its initial weights (seed 0): log_prob of 64 images (the NLL metric; naive autoregressive sampling
    runs the same forward once per pixel) and sample(64) for the models that draw in one pass."""
    import torch

    from dgm.compiling import compile_model
    from dgm.models import build_model

    torch.manual_seed(0)
    levels = SPECS[model_name]
    model = build_model(model_name, {"channels": 1, "height": 8, "width": 8, "levels": levels}).to(device).eval()
    x = torch.randint(0, levels, (64, 1, 8, 8), generator=torch.Generator().manual_seed(0)).float().to(device)
    jobs = {"log_prob": lambda: model.log_prob(x)} if "log_prob" in model.capabilities or \
        "elbo" in model.capabilities else {}
    if not model.sample_methods and model.can_sample:  # one-pass samplers (cached sampling is never compiled)
        jobs["sample"] = lambda: model.sample(64, generator=torch.Generator().manual_seed(0))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def per_call(fn):
        for _ in range(3):
            fn()
        sync()
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        return (time.perf_counter() - t) / calls

    out = {}
    with torch.no_grad():
        eager = {k: per_call(fn) for k, fn in jobs.items()}
        compile_model(model)
        for k, fn in jobs.items():
            t = time.perf_counter()
            fn()
            sync()
            first = time.perf_counter() - t
            c = per_call(fn)
            out[k] = {"eager_ms": round(1000 * eager[k], 3), "compiled_ms": round(1000 * c, 3),
                      "compiled_over_eager_speed": round(eager[k] / c, 2), "first_call_s": round(first, 1)}
    return out


def _inference(model: str, args, runs: Path) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(runs / f"inductor-{model}-inference"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, __file__, "--inference-worker", model, str(args.calls), args.device,
                           str(args.threads)], env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row = {"model": model, "threads": args.threads, "device": args.device, "calls": args.calls,
           "process_cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2)}
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
    else:
        row["jobs"] = json.loads(proc.stdout.strip().splitlines()[-1])
    return row


def _inference_table(rows) -> str:
    lines = ["| model | call (batch 64, no grad) | eager ms | compiled ms | compiled speed / eager | first call |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        for job, v in r.get("jobs", {}).items():
            lines.append(f"| {r['model']} | {job} | {v['eager_ms']:.1f} | {v['compiled_ms']:.1f} | "
                         f"{v['compiled_over_eager_speed']:.2f}x | {v['first_call_s']:.0f} s |")
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error']} | | | | |")
    return "\n".join(lines)


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return "unknown"
    shown = [f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma")]
    return " ".join(shown) or "none of avx2/avx512/amx"


def _run(model: str, mode: str, args, runs: Path) -> dict:
    out = runs / f"{model}-{mode}"
    steps = args.warmup + args.steps
    argv = ["train", model, *MODELS[model], *MODE_FLAGS[mode], "--steps", str(steps), "--log-every",
            str(args.warmup), "--n-samples", "0", "--ckpt-every", str(10 * steps), "--seed", "0", "--threads",
            str(args.threads), "--device", args.device, "--no-progress", "--out", str(out)]
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(runs / f"inductor-{model}-{mode}"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    row = {"model": model, "mode": mode, "threads": args.threads, "device": args.device, "batch_size": 64,
           "warmup_steps": args.warmup, "steps": args.steps, "process_wall_s": round(wall, 2),
           "process_cpu_s": round(cpu, 2), "command": "dgm " + " ".join(argv)}
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("dgm: warning")]
    if warnings:
        row["warnings"] = warnings
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
        return row
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    times = {r["step"]: r["time"] for r in rows if r.get("split") == "train"}
    t_warm, t_end = times[args.warmup], times[steps]
    step_s = (t_end - t_warm) / args.steps
    row.update(images_per_sec=round(64 * args.steps / (t_end - t_warm), 1), step_ms=round(1000 * step_s, 2),
               first_steps_extra_s=round(max(t_warm - args.warmup * step_s, 0.0), 2),
               loss_at_end=next(r.get("loss") for r in rows if r.get("split") == "train" and r["step"] == steps))
    return row


def _table(rows) -> str:
    by = {(r["model"], r["mode"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    head = "| model | " + " | ".join(f"{m} images/s" for m in modes) + " | " + \
        " | ".join(f"{m} / eager" for m in modes if m != "eager") + " | compile: first steps | CPU s (" + \
        ", ".join(modes) + ") |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for model in models:
        eager = by.get((model, "eager"), {}).get("images_per_sec")
        cells = []
        for m in modes:
            r = by.get((model, m), {})
            cells.append(f"{r['images_per_sec']:,.0f}" if "images_per_sec" in r else f"failed: {r.get('error', '?')}")
        ratios = []
        for m in modes:
            if m == "eager":
                continue
            v = by.get((model, m), {}).get("images_per_sec")
            ratios.append(f"{v / eager:.2f}x" if v and eager else "-")
        first = by.get((model, "compile"), {}).get("first_steps_extra_s")
        cpu = ", ".join(f"{by.get((model, m), {}).get('process_cpu_s', float('nan')):.0f}" for m in modes)
        lines.append(f"| {model} | " + " | ".join(cells) + " | " + " | ".join(ratios) +
                     f" | {'-' if first is None else f'{first:.0f} s'} | {cpu} |")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return _worker(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "--inference-worker":
        import torch

        torch.set_num_threads(int(sys.argv[5]))
        print(json.dumps(_inference_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--warmup", type=int, default=5, help="steps before the measured ones (compiling happens here)")
    p.add_argument("--steps", type=int, default=30, help="measured steps")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--parts", nargs="+", default=["train", "inference"], choices=["train", "inference"],
                   help="train: the training table; inference: eager vs compiled calls of what sample/eval compile")
    p.add_argument("--calls", type=int, default=20, help="inference: timed calls after 3 warm-up calls")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default="benchmarks/results/amp_compile.json")
    args = p.parse_args()
    import torch

    load0 = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None
    rows, inference = [], []
    with tempfile.TemporaryDirectory(prefix="amp_compile-") as tmp:
        for model in args.models if "train" in args.parts else ():
            for mode in args.modes:
                row = _run(model, mode, args, Path(tmp))
                rows.append(row)
                shown = row.get("images_per_sec", row.get("error"))
                print(f"{model:<15} {mode:<8} {shown} images/s  (first steps +{row.get('first_steps_extra_s', '-')} s, "
                      f"{row['process_cpu_s']:.0f} CPU s)", flush=True)
        for model in args.models if "inference" in args.parts else ():
            row = _inference(model, args, Path(tmp))
            inference.append(row)
            print(f"{model:<15} inference {row.get('jobs', row.get('error'))}", flush=True)
    load1 = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None
    tables = {"train": _table(rows) if rows else "", "inference": _inference_table(inference) if inference else ""}
    print()
    print("\n\n".join(t for t in tables.values() if t))
    # one JSON for both parts: a part not run this time keeps its earlier results (each part has its own time)
    path = Path(args.json)
    result = json.loads(path.read_text()) if path.is_file() else {}
    result.update({"python": platform.python_version(), "torch": torch.__version__,
                   "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                   "cpu_flags": _cpu_flags(), "device": args.device})
    if args.device == "cpu":
        from dgm.devices import cpu_native_bf16

        result["cpu_native_bf16"] = cpu_native_bf16()
    for part, got in (("train", rows), ("inference", inference)):
        if part in args.parts:
            result[part] = {"written": time.strftime("%Y-%m-%d %H:%M %Z"), "loadavg_before": load0,
                            "loadavg_after": load1, "threads": args.threads, "rows": got, "table": tables[part]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nresults: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
