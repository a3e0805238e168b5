"""`dgm bench modes`: mode collapse on toy mixtures, every GAN objective and mode-collapse remedy, several seeds.

Evaluation protocol (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018), see ``dgm.data.toy`` and
``dgm.metrics.modes``: ring of 8 Gaussians (radius 1, std 0.01, 8 distinct modes at k 2 pi / 8) and grid of 25
({-4,..,4}^2, std 0.05); 2500 generated samples per trained generator; a sample is high-quality within 3 std of
its nearest mode; a mode is captured when at least one high-quality sample is nearest to it; reverse KL =
KL(q || uniform) over the high-quality samples' mode histogram q. Mean +- standard error over seeds.

Training: ``--protocol veegan`` (setting A) or ``--protocol pacgan`` (setting B) runs the published networks and
optimisers (``dgm.bench.protocols``), beside that protocol's published rows; without a protocol every entry gets
dgm's MLPs, the same number of discriminator updates (``--steps``) and its objective's own optimiser defaults.
An entry is an objective, a remedy (``unrolled-5``, ``pacgan2..4``, ``minibatch-disc``, ``mbstd``, ``ema``) on the
non-saturating GAN, or a combination joined by ``+`` (``pacgan2+mbstd``, ``wgan-gp+pacgan2``). ``+g-steps`` counts an
entry's length in generator steps instead of D updates (``wgan-gp+g-steps`` with ``--steps 25000``: 125,000 D
updates at n_critic 5, as WGAN-GP's own toy script counts its iterations). Each run is an ordinary run directory
(config, checkpoints, metrics.jsonl), so any row can be inspected or resumed.
"""
from __future__ import annotations

import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import DgmError

# Remedies on top of an objective (the non-saturating GAN when an entry names no objective).
UNROLLED = "unrolled-5"
VARIANTS = {
    UNROLLED: {"unroll_steps": 5},                 # Metz et al. 2017; VEEGAN/GDPP's table: 5 unrolling steps
    "pacgan2": {"pack": 2}, "pacgan3": {"pack": 3}, "pacgan4": {"pack": 4},  # Lin et al. 2018
    "minibatch-disc": {"minibatch_disc": 5, "minibatch_disc_dim": 3},  # Salimans et al. 2016 (B, C small for 2-D)
    "mbstd": {"mbstd": True},                      # Karras et al. 2018 (group 4)
    "ema": {"ema_decay": 0.999},                   # EMA of G's weights, sampled (Yazici et al. 2019); not a default row
    "gdpp": {"gdpp": 1.0},                         # Elfeki et al. 2019 (their code: G loss 0.5 (GAN + GDPP)); not a default row
}
REMEDY_ENTRIES = [UNROLLED, "pacgan2", "pacgan3", "pacgan4", "minibatch-disc", "mbstd"]
# Not a model option but the unit of the length: --steps counts G steps, so the run makes --steps x n_critic D updates
# (github.com/igul222/improved_wgan_training gan_toy.py counts ITERS in generator iterations, CRITIC_ITERS = 5).
G_STEPS = "g-steps"


def resolve(name: str):
    """Benchmark entry name -> (objective, extra model options): ``objective``, ``remedy`` or ``a+b+...``."""
    from ..objectives import OBJECTIVES

    objective, extra = None, {}
    for part in name.split("+"):
        if part == G_STEPS:
            continue
        if part in VARIANTS:
            extra.update(VARIANTS[part])
        elif objective is None:
            OBJECTIVES.get(part)  # an unknown name: one-line error with the nearest name
            objective = part
        else:
            raise DgmError(f"bench entry {name!r} names two objectives; join one objective with remedies "
                           f"({', '.join([*VARIANTS, G_STEPS])}) by '+'")
    return objective or "non-saturating", extra


def default_entries(protocol: Optional[str] = None) -> List[str]:
    """Without a protocol: every objective and the unrolled GAN. With --protocol pacgan: its rows. With
    --protocol veegan: the classic losses, every remedy, and WGAN-GP counted in generator steps."""
    from ..objectives import OBJECTIVES

    if protocol == "pacgan":
        return ["non-saturating", "pacgan2", "pacgan3", "pacgan4", "minibatch-disc", "mbstd"]
    if protocol:  # setting A also: WGAN-GP at its authors' toy length (25k G steps), the row that meets the goal
        return ["minimax", "non-saturating", "wgan-gp", "hinge"] + REMEDY_ENTRIES + ["wgan-gp+" + G_STEPS]
    return OBJECTIVES.names() + [UNROLLED]


def entry_options(entry: str, protocol: Optional[str], data: str, model_opts: Dict, batch_size: Optional[int]):
    """(model options, training options but the length) of one bench entry, under a protocol or dgm's defaults.

    ``batch_size`` counts D's inputs, packs with packing (PacGAN's convention): a PacGAN-m row draws m x that many
    real and generated samples per update, so its D sees as many inputs per update as the unpacked rows'."""
    objective, extra = resolve(entry)
    model = {"objective": objective, **model_opts, **extra}
    if protocol:
        from .protocols import apply

        given = {} if batch_size is None else {"batch_size": batch_size * model.get("pack", 1)}
        model, train = apply(protocol, data, model, {**given, "steps": 1})
        train.pop("steps")
        return model, train
    return model, {"batch_size": (batch_size or 256) * model.get("pack", 1)}


def counts_g_steps(entry: str) -> bool:
    return G_STEPS in entry.split("+")


def d_updates(entry: str, steps: int, model: Dict) -> int:
    """D updates of one run of ``entry`` at bench length ``steps`` (its model options ``model``, as
    ``entry_options`` gives them): ``steps``, or ``steps`` x n_critic for a ``+g-steps`` entry."""
    return steps * n_critic(model) if counts_g_steps(entry) else steps


def n_critic(model: Dict) -> int:
    """D updates per G update: the model option, else the objective's paper default (as GANModel resolves 0)."""
    from ..objectives import OBJECTIVES

    return int(model.get("n_critic") or OBJECTIVES.get(model["objective"]).n_critic)


def length_line(steps: int, protocol: Optional[str]) -> str:
    """The table's length: ``steps`` D updates per run, and which part of the protocol's length that is."""
    from .protocols import get

    full = get(protocol).steps if protocol else None
    return f"{steps} D updates per run" + (f" of the protocol's {full} ({100 * steps / full:.1f} %)" if full else "")


def length_note(rows: Sequence[Dict]) -> str:
    """Lines under the table for the entries that count their length in generator steps."""
    seen = {}
    for r in rows:
        if counts_g_steps(r["entry"]) and "length" in r:
            seen[r["entry"]] = (r["length"], r["steps"], r["steps"] // r["length"])
    out = [f"{e}: {g} generator steps per run = {d} D updates (n_critic {k}), not the D updates above"
           for e, (g, d, k) in sorted(seen.items())]
    return "\n".join(["", "length counted in generator steps:", *out]) if out else ""


def _plain(options: Dict) -> Dict:
    """``options`` as rows.jsonl stores them (JSON types), so a stored row compares equal to a fresh job's."""
    return json.loads(json.dumps(options, sort_keys=True))


def _check_reused(row: Dict, job: Dict, log: Path) -> None:
    """A row kept from an earlier bench must have been trained with the options this bench would use."""
    want = _plain(dict(zip(("model", "train"), entry_options(job["entry"], job.get("protocol"), job["data"],
                                                             job.get("model_opts", {}), job["batch_size"]))))
    have = row.get("options")
    if have == want:
        return
    where = f"{job['entry']} on {job['data']}, seed {job['seed']}"
    if have is None:
        raise DgmError(f"{log} holds a row ({where}) from an older dgm that did not record its options, so it "
                       "cannot be checked against this bench: choose another --out (or move rows.jsonl away)")
    diff = sorted(f"{part}.{k}: {have.get(part, {}).get(k)!r} there, {want[part].get(k)!r} here"
                  for part in want for k in set(want[part]) | set(have.get(part, {}))
                  if have.get(part, {}).get(k) != want[part].get(k))
    raise DgmError(f"{log} holds a row ({where}) trained with other options ({'; '.join(diff)}): choose another "
                   "--out, or give the options it was run with")


def _exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Worker initializer: end this worker as soon as the bench that started it is gone.

    A bench killed by SIGTERM or SIGKILL cannot stop its pool, and its workers would go on training the runs they
    hold (and the queued ones) into the same run folders that the next bench of that --out trains afresh. So each
    worker watches its parent and leaves (``os._exit``, no clean-up) once it has been re-parented.
    """
    import threading
    import time

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(3)

    threading.Thread(target=watch, name="dgm-bench-parent-watch", daemon=True).start()


def _set_aside(run_dir: Path) -> None:
    """Make room for a run that trains again: under its lock (a run another process holds is refused), a folder
    holding a checkpoint moves to RUN.replaced-N beside it (a finished run is never deleted; a rerun with other
    options leaves the old run there), one without is removed."""
    import shutil

    from ..checkpoint import list_checkpoints
    from ..lock import RunLock

    with RunLock(run_dir):  # a LockedError (another bench trains it now) is the one-line refusal
        if not list_checkpoints(run_dir):
            for child in run_dir.iterdir():
                if child.name != ".dgm.lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            return
        k = 1
        while run_dir.with_name(f"{run_dir.name}.replaced-{k}").exists():
            k += 1
        dest = run_dir.with_name(f"{run_dir.name}.replaced-{k}")
        dest.mkdir()
        for child in run_dir.iterdir():
            if child.name != ".dgm.lock":
                os.replace(child, dest / child.name)
    print(f"dgm: note: {run_dir} held a run this bench trains again; it is now {dest}", file=sys.stderr)


def run_one(job: Dict) -> Dict:
    """Train one GAN on one toy mixture with one seed and score its 2500 samples; runs in a worker process."""
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(job.get("threads", 1))
    try:
        return _run_one(job)
    finally:  # run in the bench's own process (--jobs 1): leave its thread count as it was
        torch.set_num_threads(threads_before)


def _run_one(job: Dict) -> Dict:
    import time

    import torch

    from ..data import load_dataset
    from ..training import TrainConfig
    from ..metrics.modes import modes
    from ..runs import load
    from ..checkpoint import latest_checkpoint
    from ..training.engine import TrainingStopped
    from ..training.run import train_run

    cpu0 = time.process_time()
    run_dir = Path(job["run_dir"])
    if run_dir.exists():  # left by an interrupted bench (its row is not in rows.jsonl): train it again from scratch
        _set_aside(run_dir)
    data_cfg = {"name": job["data"], "data_dir": None, "binarize": None, "levels": None, "scale": "levels",
                "options": {}}
    model_opts, train_opts = entry_options(job["entry"], job.get("protocol"), job["data"], job.get("model_opts", {}),
                                           job["batch_size"])
    snaps, stopped = [], None
    marks = job.get("snapshots") or [job["steps"]]
    for i, s in enumerate(marks):
        cfg = TrainConfig(**{**train_opts, "steps": s}, seed=job["seed"], progress=False, n_samples=0,
                          ckpt_every=10 ** 9, log_every=max(1, job["steps"] // 20), threads=job.get("threads", 1))
        try:
            train_run("gan", data_cfg, model_opts, cfg, out=str(run_dir), resume=i > 0, overrides={"steps": s})
        except TrainingStopped as e:  # a diverged GAN (non-finite loss) is a result, not a crash of the bench
            stopped = str(e)
            break
        if len(marks) > 1:
            model = load(run_dir)
            snaps.append(model.sample(2500, generator=torch.Generator().manual_seed(0)).numpy().tolist())
    data = load_dataset(job["data"], "train")
    if stopped is None or latest_checkpoint(run_dir):
        model = load(run_dir)
        res = modes(model, data)
    else:  # stopped before any checkpoint: no generator to score
        res = {"modes": 0, "high_quality": 0.0, "reverse_kl": None, "num_modes": len(data.means), "n_samples": 0}
    out = {"entry": job["entry"], "data": job["data"], "seed": job["seed"], **res, "run_dir": str(run_dir),
           "steps": job["steps"], "length": job.get("length", job["steps"]), "cpu_seconds": time.process_time() - cpu0,
           "options": _plain({"model": model_opts, "train": train_opts})}
    if stopped is not None:  # scored at its last checkpoint (format_table lists these runs under the table)
        out["stopped"] = stopped
    if snaps:
        out["snapshots"] = snaps
        out["snapshot_steps"] = marks
    return out


def _mean_std(v: Sequence[Optional[float]]):
    """Mean and standard error of the mean (std with ddof 1 / sqrt(n), as PacGAN's +-; None for one seed)."""
    v = [x for x in v if x is not None and math.isfinite(x)]
    if not v:
        return None, None, 0
    se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None  # one seed: no error bar
    return float(np.mean(v)), se, len(v)


def summarize(rows: List[Dict]) -> Dict:
    """Per dataset and entry: mean and standard error (``_se``) of modes, high_quality and reverse_kl over seeds."""
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
            out[data][entry] = {"modes_mean": m[0], "modes_se": m[1], "high_quality_mean": h[0],
                                "high_quality_se": h[1], "reverse_kl_mean": k[0], "reverse_kl_se": k[1],
                                "reverse_kl_defined": k[2], "seeds": len(rs)}
    return out


def _pm(mean, se, scale=1.0, digits=1):
    if mean is None:
        return "-"
    return f"{scale * mean:.{digits}f}" + ("" if se is None else f" ± {scale * se:.{digits}f}")


def format_table(summary: Dict, num_modes: Dict[str, int], protocol: Optional[str] = None,
                 length: str = "") -> str:
    """The table: dgm's rows (mean ± standard error over seeds), then the protocol's published rows (marked *)."""
    from .protocols import get

    published = get(protocol).published if protocol else ()
    lines = []
    for data, entries in summary.items():
        lines.append(f"\n{data} ({num_modes.get(data, '?')} modes; 2500 samples; high quality = within 3 std; "
                     f"protocol {protocol or 'none (dgm MLPs)'}{'; ' + length if length else ''})")
        lines.append(f"{'entry':<28} {'modes':>13} {'high quality %':>15} {'reverse KL':>15}  seeds")
        for entry, s in sorted(entries.items(), key=lambda kv: -(kv[1]["modes_mean"] or 0)):
            kl = _pm(s["reverse_kl_mean"], s["reverse_kl_se"], digits=2) if s["reverse_kl_mean"] is not None \
                else "undefined"
            if s["reverse_kl_mean"] is not None and s["reverse_kl_defined"] < s["seeds"]:
                kl += f" ({s['reverse_kl_defined']})"
            lines.append(f"{entry:<28} {_pm(s['modes_mean'], s['modes_se']):>13} "
                         f"{_pm(s['high_quality_mean'], s['high_quality_se'], 100):>15} {kl:>15}  {s['seeds']}")
        for name, d, m, h, k, _ in published:
            if d != data:
                continue
            row = [v if isinstance(v, tuple) else (v, None) for v in (m, h, k)]
            lines.append(f"{'* ' + name:<28} {_pm(*row[0]):>13} {_pm(*row[1], 100):>15} "
                         f"{_pm(*row[2], digits=2):>15}")
    if published:
        lines.append(f"\n* published, {get(protocol).source} (the papers' tables; mean"
                     f"{' ± standard error' if protocol == 'pacgan' else ' of 5 runs, no error bars'}); "
                     "the papers ran the full length")
    return "\n".join(lines)


def stopped_note(rows: Sequence[Dict]) -> str:
    """Lines under the table for the runs that stopped early (non-finite loss), scored at their last checkpoint."""
    out = [f"{r['entry']} on {r['data']}, seed {r['seed']}: {r['stopped'].split(';')[0]}; scored at its last checkpoint"
           for r in sorted(rows, key=lambda r: (r["entry"], r["data"], r["seed"])) if r.get("stopped")]
    return "\n".join(["", "stopped early (counted in the rows above):", *out]) if out else ""


def bench_length(protocol: Optional[str], steps: Optional[int], epochs: Optional[float]) -> int:
    """Discriminator updates per run: --steps, or --epochs of the protocol (PacGAN: 1,000 updates each), or the
    protocol's full length, or 3,000 without a protocol."""
    from .protocols import get

    if steps is not None and epochs is not None:
        raise DgmError("give --steps or --epochs, not both")
    if epochs is not None:
        if not protocol or not get(protocol).steps_per_epoch:
            raise DgmError("--epochs counts the epochs of --protocol pacgan (1,000 updates each); use --steps")
        if not epochs > 0:
            raise DgmError(f"--epochs must be > 0, got {epochs}")
        return max(1, round(epochs * get(protocol).steps_per_epoch))
    if steps is not None:
        return steps
    return get(protocol).steps if protocol else 3000


def _stored_rows(log: Path) -> List[Dict]:
    """The rows an interrupted bench left in ``log``. A last line torn by a kill is dropped (with a warning; the file
    is rewritten without it, so the next row does not join it); any other line that is not a row this bench writes
    is a one-line error naming the file and the line."""
    if not log.exists():
        return []
    try:
        lines = log.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DgmError(f"cannot read {log} ({e}); move it away or choose another --out") from None
    rows = []
    for i, line in enumerate(lines, 1):
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) and i > 0:
                print(f"dgm: warning: {log}: its last line was torn (a killed bench); dropped, that run trains again",
                      file=sys.stderr)
                tmp = log.with_name(log.name + ".tmp")
                tmp.write_text("".join(ln + "\n" for ln in lines[:-1]))
                os.replace(tmp, log)
                break
            raise DgmError(f"{log} line {i} is not JSON; move the file away or choose another --out") from None
        ok = isinstance(r, dict) and isinstance(r.get("entry"), str) and isinstance(r.get("data"), str) and \
            isinstance(r.get("seed"), int) and isinstance(r.get("length", r.get("steps")), int)
        if not ok:
            raise DgmError(f"{log} line {i} is not a row dgm bench modes writes (entry, data, seed, length); move "
                           "the file away or choose another --out")
        rows.append(r)
    return rows


def run_benchmark(entries: Sequence[str], datasets: Sequence[str], seeds: int, steps: Optional[int], out: str,
                  batch_size: Optional[int] = None, jobs: int = 1, model_opts: Optional[Dict] = None,
                  figure: bool = True, progress: bool = True, protocol: Optional[str] = None,
                  epochs: Optional[float] = None, threads: int = 1) -> Dict:
    """Train every (entry, dataset, seed) and return {"rows", "summary", "table"}; writes out/results.json.

    Finished rows are appended to out/rows.jsonl as they come; a rerun with the same --out and length takes them
    from there instead of training them again (an interrupted bench resumes)."""
    from ..data import load_dataset
    from .protocols import get

    if protocol:
        get(protocol)
    steps = bench_length(protocol, steps, epochs)
    for e in entries:
        resolve(e)  # unknown names fail before anything runs
    for d in datasets:
        if not hasattr(load_dataset(d, "val"), "means"):
            raise DgmError(f"dgm bench modes needs toy mixtures (ring8, grid25); {d!r} is not one")
    if seeds < 1 or steps < 1 or jobs < 1 or threads < 1:
        raise DgmError("--seeds, --steps, --jobs and --threads must be >= 1")
    out_dir = Path(out)
    if (out_dir / "results.json").exists():
        raise DgmError(f"{out_dir} already holds benchmark results; choose another --out")
    done = {}
    log = out_dir / "rows.jsonl"
    for r in _stored_rows(log):
        # a row of this length: the bench's --steps (D updates, or G steps for +g-steps entries; old rows: steps)
        if r.get("length", r.get("steps")) == steps:
            done[(r["entry"], r["data"], r["seed"])] = r
    snap_entries = {"non-saturating", UNROLLED, "pacgan4"} if figure else set()
    all_jobs = []
    for s in range(seeds):  # seed by seed: an interrupted bench has every row with fewer seeds
        for d in datasets:
            for e in entries:
                model = entry_options(e, protocol, d, model_opts or {}, batch_size)[0]
                job = {"entry": e, "data": d, "seed": s, "steps": d_updates(e, steps, model), "length": steps,
                       "batch_size": batch_size,
                       "protocol": protocol, "run_dir": str(out_dir / "runs" / d / e / f"seed-{s}"),
                       "model_opts": model_opts or {}, "threads": threads}
                if e in snap_entries and s == 0:
                    job["snapshots"] = [max(1, round(job["steps"] * f)) for f in (0.05, 0.2, 0.4, 0.7, 1.0)]
                if (e, d, s) in done:
                    _check_reused(done[(e, d, s)], job, log)
                    if done[(e, d, s)]["steps"] != job["steps"]:  # the same G steps at another n_critic: train it
                        del done[(e, d, s)]
                if (e, d, s) not in done or (job.get("snapshots") and "snapshots" not in done[(e, d, s)]):
                    all_jobs.append(job)
    from tqdm.auto import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [r for k, r in done.items() if not any((j["entry"], j["data"], j["seed"]) == k for j in all_jobs)]
    bar = tqdm(total=len(all_jobs), desc="bench modes", disable=not progress)

    def finished(r):
        rows.append(r)
        with log.open("a") as f:
            f.write(json.dumps(r) + "\n")
        bar.update(1)

    if jobs == 1:
        for j in all_jobs:
            finished(run_one(j))
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_exit_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(run_one, j) for j in all_jobs]  # started in this order (seed by seed)
            try:
                for f in as_completed(futures):  # each row reaches rows.jsonl when its run ends, not in job order
                    finished(f.result())
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    bar.close()
    summary = summarize(rows)
    num_modes = {d: len(load_dataset(d, "val").means) for d in datasets}
    full = get(protocol).steps if protocol else None
    table = format_table(summary, num_modes, protocol, length_line(steps, protocol)) + length_note(rows) + \
        stopped_note(rows)
    slim = [{k: v for k, v in r.items() if k != "snapshots"} for r in rows]
    cpu = sum(r.get("cpu_seconds", 0.0) for r in rows)
    (out_dir / "results.json").write_text(json.dumps({
        "protocol": {"name": protocol, "samples": 2500, "threshold_std": 3.0, "steps": steps,
                     "full_steps": full, "batch_size": batch_size, "seeds": seeds, "model_opts": model_opts or {},
                     "cpu_seconds_training": cpu},
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
        # a row kept from an earlier machine may have lost its run folder: draw the rows that still have one
        rs = sorted([r for r in rows if r["data"] == d and r["seed"] == 0 and (Path(r["run_dir"]) / "config.json").is_file()],
                    key=lambda r: r["entry"])
        if not rs:
            continue
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
