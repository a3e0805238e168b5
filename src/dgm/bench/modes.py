"""`dgm bench modes`: mode collapse on toy mixtures, every GAN objective, several seeds.

Evaluation protocol (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018), see ``dgm.data.toy`` and
``dgm.metrics.modes``: ring of 8 Gaussians (radius 1, std 0.01) and grid of 25 ({-4,..,4}^2, std 0.05);
2500 generated samples per trained generator; a sample is high-quality within 3 std of its nearest mode;
a mode is captured when at least one high-quality sample is nearest to it; reverse KL = KL(q || uniform)
over the high-quality samples' mode histogram q. Mean +- std over seeds.

Training deviates from the papers to fit a CPU budget: the papers train for 400 epochs of 100k points
(PacGAN: batch 100, Adam 1e-4); here every objective gets the same number of discriminator updates
(``--steps``) with its own paper optimiser defaults (``dgm list objectives``). Each run is an ordinary run
directory (config, checkpoints, metrics.jsonl), so any row can be inspected or resumed.
"""
from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import DgmError

# Every objective of the registry, plus the unrolled GAN (Metz et al. 2017) on top of the non-saturating loss.
UNROLLED = "unrolled-5"
VARIANTS = {UNROLLED: ("non-saturating", {"unroll_steps": 5})}

# Published rows, as we recall them from the papers' Table 1; NOT verified against the text here (this
# environment is offline and the tables are images). Check them against the papers before citing.
PUBLISHED = {
    "ring8": [
        ("VEEGAN paper: GAN", 1.0, 0.993, None), ("VEEGAN paper: ALI", 2.8, 0.0013, None),
        ("VEEGAN paper: Unrolled GAN", 7.6, 0.356, None), ("VEEGAN paper: VEEGAN", 8.0, 0.529, None),
        ("PacGAN paper: GAN", 6.3, 0.982, 0.45),
    ],
    "grid25": [
        ("VEEGAN paper: GAN", 3.3, 0.005, None), ("VEEGAN paper: ALI", 15.8, 0.016, None),
        ("VEEGAN paper: Unrolled GAN", 23.6, 0.16, None), ("VEEGAN paper: VEEGAN", 24.6, 0.40, None),
        ("PacGAN paper: PacGAN4", 24.8, 0.936, 0.04),
    ],
}


def resolve(name: str):
    """Benchmark entry name -> (objective, extra model options)."""
    from ..objectives import OBJECTIVES

    if name in VARIANTS:
        return VARIANTS[name]
    OBJECTIVES.get(name)
    return name, {}


def default_entries() -> List[str]:
    from ..objectives import OBJECTIVES

    return OBJECTIVES.names() + [UNROLLED]


def run_one(job: Dict) -> Dict:
    """Train one GAN on one toy mixture with one seed and score its 2500 samples; runs in a worker process."""
    import torch

    torch.set_num_threads(job.get("threads", 1))
    from ..data import load_dataset
    from ..training import TrainConfig
    from ..metrics.modes import modes
    from ..runs import load
    from ..training.run import train_run

    objective, extra = resolve(job["entry"])
    run_dir = Path(job["run_dir"])
    data_cfg = {"name": job["data"], "data_dir": None, "binarize": None, "levels": None, "scale": "levels",
                "options": {}}
    model_opts = {"objective": objective, **job.get("model_opts", {}), **extra}
    snaps = []
    marks = job.get("snapshots") or [job["steps"]]
    for i, s in enumerate(marks):
        cfg = TrainConfig(steps=s, batch_size=job["batch_size"], seed=job["seed"], progress=False, n_samples=0,
                          ckpt_every=10 ** 9, log_every=max(1, job["steps"] // 20))
        train_run("gan", data_cfg, model_opts, cfg, out=str(run_dir), resume=i > 0, overrides={"steps": s})
        if len(marks) > 1:
            model = load(run_dir)
            snaps.append(model.sample(2500, generator=torch.Generator().manual_seed(0)).numpy().tolist())
    model = load(run_dir)
    data = load_dataset(job["data"], "train")
    res = modes(model, data)
    out = {"entry": job["entry"], "data": job["data"], "seed": job["seed"], **res, "run_dir": str(run_dir)}
    if snaps:
        out["snapshots"] = snaps
        out["snapshot_steps"] = marks
    return out


def _mean_std(v: Sequence[Optional[float]]):
    v = [x for x in v if x is not None and math.isfinite(x)]
    if not v:
        return None, None, 0
    return float(np.mean(v)), float(np.std(v)), len(v)


def summarize(rows: List[Dict]) -> Dict:
    table = {}
    for r in rows:
        table.setdefault(r["data"], {}).setdefault(r["entry"], []).append(r)
    out = {}
    for data, entries in table.items():
        out[data] = {}
        for entry, rs in entries.items():
            m = _mean_std([r["modes"] for r in rs])
            h = _mean_std([r["high_quality"] for r in rs])
            k = _mean_std([r["reverse_kl"] for r in rs])
            out[data][entry] = {"modes_mean": m[0], "modes_std": m[1], "high_quality_mean": h[0],
                                "high_quality_std": h[1], "reverse_kl_mean": k[0], "reverse_kl_std": k[1],
                                "reverse_kl_defined": k[2], "seeds": len(rs)}
    return out


def format_table(summary: Dict, num_modes: Dict[str, int]) -> str:
    lines = []
    for data, entries in summary.items():
        lines.append(f"\n{data} ({num_modes.get(data, '?')} modes; 2500 samples; high quality = within 3 std)")
        lines.append(f"{'objective':<28} {'modes':>12} {'high quality %':>16} {'reverse KL':>16}  seeds")
        for entry, s in sorted(entries.items(), key=lambda kv: -(kv[1]["modes_mean"] or 0)):
            kl = (f"{s['reverse_kl_mean']:.2f} ± {s['reverse_kl_std']:.2f}" if s["reverse_kl_mean"] is not None
                  else "undefined")
            if s["reverse_kl_mean"] is not None and s["reverse_kl_defined"] < s["seeds"]:
                kl += f" ({s['reverse_kl_defined']})"
            lines.append(f"{entry:<28} {s['modes_mean']:>6.1f} ± {s['modes_std']:<4.1f} "
                         f"{100 * s['high_quality_mean']:>8.1f} ± {100 * s['high_quality_std']:<5.1f} {kl:>16}  "
                         f"{s['seeds']}")
        for name, m, h, k in PUBLISHED.get(data, []):
            ks = f"{k:.2f}" if k is not None else "-"
            lines.append(f"{name + ' *':<28} {m:>6.1f}        {100 * h:>8.1f}        {ks:>16}")
    lines.append("\n* published rows as recalled from the papers' Table 1, not verified offline; "
                 "the papers train far longer (see the protocol in dgm/bench/modes.py)")
    return "\n".join(lines)


def run_benchmark(entries: Sequence[str], datasets: Sequence[str], seeds: int, steps: int, out: str,
                  batch_size: int = 256, jobs: int = 1, model_opts: Optional[Dict] = None, figure: bool = True,
                  progress: bool = True) -> Dict:
    """Train every (entry, dataset, seed) and return {"rows", "summary", "table"}; writes out/results.json."""
    from ..data import load_dataset

    for e in entries:
        resolve(e)  # unknown names fail before anything runs
    for d in datasets:
        if not hasattr(load_dataset(d, "val"), "means"):
            raise DgmError(f"dgm bench modes needs toy mixtures (ring8, grid25); {d!r} is not one")
    if seeds < 1 or steps < 1 or jobs < 1:
        raise DgmError("--seeds, --steps and --jobs must be >= 1")
    out_dir = Path(out)
    if (out_dir / "results.json").exists():
        raise DgmError(f"{out_dir} already holds benchmark results; choose another --out")
    snap_entries = {"non-saturating", UNROLLED} if figure else set()
    all_jobs = []
    for d in datasets:
        for e in entries:
            for s in range(seeds):
                job = {"entry": e, "data": d, "seed": s, "steps": steps, "batch_size": batch_size,
                       "run_dir": str(out_dir / "runs" / d / e / f"seed-{s}"), "model_opts": model_opts or {}}
                if e in snap_entries and s == 0:
                    job["snapshots"] = [max(1, round(steps * f)) for f in (0.05, 0.2, 0.4, 0.7, 1.0)]
                all_jobs.append(job)
    from tqdm.auto import tqdm

    rows = []
    bar = tqdm(total=len(all_jobs), desc="bench modes", disable=not progress)
    if jobs == 1:
        for j in all_jobs:
            rows.append(run_one(j))
            bar.update(1)
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            for r in pool.map(run_one, all_jobs):
                rows.append(r)
                bar.update(1)
    bar.close()
    summary = summarize(rows)
    num_modes = {d: len(load_dataset(d, "val").means) for d in datasets}
    table = format_table(summary, num_modes)
    out_dir.mkdir(parents=True, exist_ok=True)
    slim = [{k: v for k, v in r.items() if k != "snapshots"} for r in rows]
    (out_dir / "results.json").write_text(json.dumps({
        "protocol": {"samples": 2500, "threshold_std": 3.0, "steps": steps, "batch_size": batch_size,
                     "seeds": seeds, "model_opts": model_opts or {}},
        "summary": summary, "rows": slim}, indent=1) + "\n")
    (out_dir / "table.txt").write_text(table + "\n")
    if figure:
        _figures(rows, datasets, out_dir)
    return {"rows": rows, "summary": summary, "table": table}


def _figures(rows: List[Dict], datasets: Sequence[str], out_dir: Path) -> None:
    """Samples over the true density and D's surface for seed 0 of every entry; snapshots over training."""
    from ..data import load_dataset
    from ..runs import load
    from ..viz.toy import _plt, draw_points, save_snapshots

    plt = _plt()
    if plt is None:
        return
    for d in datasets:
        data = load_dataset(d, "train")
        rs = sorted([r for r in rows if r["data"] == d and r["seed"] == 0], key=lambda r: r["entry"])
        cols = 4
        nr = math.ceil(len(rs) / cols)
        fig, axes = plt.subplots(nr, cols, figsize=(4.2 * cols, 3.6 * nr), dpi=90, squeeze=False)
        import torch

        for ax, r in zip(axes.ravel(), rs):
            model = load(r["run_dir"])
            x = model.sample(2500, generator=torch.Generator().manual_seed(0))
            draw_points(ax, x.numpy(), data, model, title=f"{r['entry']}: {r['modes']} modes, "
                                                          f"{100 * r['high_quality']:.0f}% HQ")
        for ax in axes.ravel()[len(rs):]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(out_dir / f"samples-{d}.png")
        plt.close(fig)
        snaps = [r for r in rs if "snapshots" in r]
        if snaps:
            save_snapshots(out_dir / f"snapshots-{d}.png", [[np.array(p) for p in r["snapshots"]] for r in snaps], data,
                           [f"step {s}" for s in snaps[0]["snapshot_steps"]], rows=[r["entry"] for r in snaps])
