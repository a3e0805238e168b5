"""A resumable table of `dgm` runs: each row of a benchmark table is a list of jobs (one per seed), each job a
`dgm train` command and the `dgm eval` commands that score it. Finished jobs are appended to OUT/rows.jsonl as they
end, with their CPU seconds; a rerun with the same OUT skips every job whose commands are already recorded there
(a job whose commands changed is a new job), so a table grows across sessions. ``table`` prints mean +- standard
error over the seeds recorded so far.

Jobs run as child processes with one thread each (``--threads 1``, ``OMP_NUM_THREADS=1``), at most ``jobs`` at once
(two on a 2-core machine, and nothing else CPU-heavy beside them, or the CPU seconds are not evidence).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence


@dataclass
class Job:
    """One seed of one row: ``train`` (the arguments of `dgm train` after "train", without --out/--seed/--threads,
    which the runner adds) and ``evals`` (each the arguments of `dgm eval` after the run directory)."""
    row: str
    seed: int
    train: List[str]
    evals: List[List[str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return json.dumps([self.row, self.seed, self.train, self.evals])

    @property
    def name(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.row)
        return f"{safe}-s{self.seed}"


def stored(out: Path) -> Dict[str, Dict]:
    """key -> the last recorded row of each finished job in out/rows.jsonl (a torn last line is ignored)."""
    log = Path(out) / "rows.jsonl"
    rows = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[r["key"]] = r
    return rows


def _dgm(args: Sequence[str], log) -> tuple:
    """Run `python -m dgm ARGS` on one thread; (return code, stdout, child CPU seconds)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "dgm", *args], stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, out, usage.ru_utime + usage.ru_stime


def run_job(job: Job, out: Path) -> Dict:
    """Train and evaluate one job in out/runs/NAME (a leftover folder of an interrupted job is trained again)."""
    run = Path(out) / "runs" / job.name
    if run.exists():
        shutil.rmtree(run)
    run.parent.mkdir(parents=True, exist_ok=True)
    logs = Path(out) / "logs"
    logs.mkdir(exist_ok=True)
    t0 = time.time()
    with open(logs / f"{job.name}.log", "w") as log:
        code, _, cpu = _dgm(["train", *job.train, "--seed", str(job.seed), "--threads", "1", "--no-progress",
                             "--out", str(run)], log)
        row = {"key": job.key, "row": job.row, "seed": job.seed, "train": job.train, "evals": job.evals,
               "train_cpu_s": round(cpu, 1), "status": "ok" if code == 0 else f"train exit {code}", "result": {}}
        if code == 0:
            row["result"].update(_last_validation(run))
            for args in job.evals:
                code, text, cpu = _dgm(["eval", str(run), "--threads", "1", "--seed", str(job.seed), *args], log)
                row["eval_cpu_s"] = round(row.get("eval_cpu_s", 0.0) + cpu, 1)
                if code != 0:
                    row["status"] = f"eval exit {code}"
                    break
                row["result"].update({k: v for k, v in json.loads(text).items()
                                      if isinstance(v, (int, float)) and not isinstance(v, bool)})
    row["wall_s"] = round(time.time() - t0, 1)
    return row


def _last_validation(run: Path) -> Dict[str, float]:
    """The numbers of the run's last validation row in metrics.jsonl, as val_KEY (e.g. val_rec_nats)."""
    last = {}
    path = Path(run) / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if r.get("split") == "val":
                last = r
    return {f"val_{k}": v for k, v in last.items()
            if k not in ("split", "step") and isinstance(v, (int, float)) and not isinstance(v, bool)}


def run_table(jobs: Sequence[Job], out, parallel: int = 2, echo=print) -> List[Dict]:
    """Run the jobs not yet in out/rows.jsonl, ``parallel`` at a time; every finished job's row is appended as it
    ends. Returns all recorded rows of these jobs."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = stored(out)
    todo = [j for j in jobs if j.key not in done]
    echo(f"{len(jobs) - len(todo)} of {len(jobs)} jobs already in {out / 'rows.jsonl'}; running {len(todo)}")
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        futures = {pool.submit(run_job, j, out): j for j in todo}
        for f in as_completed(futures):
            row = f.result()
            with open(out / "rows.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
            done[row["key"]] = row
            echo(f"{row['row']} seed {row['seed']}: {row['status']}, train {row['train_cpu_s']} CPU s")
    return [done[j.key] for j in jobs if j.key in done]


def mean_se(values: Sequence[float]):
    """(mean, standard error of the mean, n) of the finite values; se is None for one value."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return None, None, 0
    m = sum(v) / len(v)
    if len(v) < 2:
        return m, None, 1
    var = sum((x - m) ** 2 for x in v) / (len(v) - 1)
    return m, math.sqrt(var / len(v)), len(v)


def table(rows: Sequence[Dict], columns: Sequence[str], order: Optional[Sequence[str]] = None, digits: int = 3) -> str:
    """A markdown table: one line per row name (``order``, else first appearance), mean +- se over its seeds for each
    column, the seeds and the mean train CPU seconds."""
    names = list(order) if order else list(dict.fromkeys(r["row"] for r in rows))
    lines = ["| row | " + " | ".join(columns) + " | seeds | train CPU s |", "|---" * (len(columns) + 3) + "|"]
    for name in names:
        mine = [r for r in rows if r["row"] == name and r["status"] == "ok"]
        if not mine:
            continue
        cells = []
        for c in columns:
            m, se, n = mean_se([r["result"].get(c) for r in mine])
            cells.append("-" if m is None else f"{m:.{digits}f}" + (f" +- {se:.{digits}f}" if se is not None else ""))
        cpu = mean_se([r["train_cpu_s"] for r in mine])[0]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {len(mine)} | {cpu:.0f} |")
    return "\n".join(lines)


def add_arguments(ap) -> None:
    """The options every table script shares: --jobs, --rows, --out, --table."""
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rows", default=None, help="comma-separated row names, or their first words, to run "
                    "(default: all)")
    ap.add_argument("--out", default=None, help="the table's folder (default: under benchmarks/results/)")
    ap.add_argument("--table", action="store_true", help="print the recorded table and exit")


def run_or_show(jobs: Sequence[Job], out, args, columns: Sequence[str]):
    """Keep the jobs --rows names (names or their starts: row names hold commas themselves), then run them (or with
    --table only read what is recorded for them); print the table, write out/table.md; returns (rows, text)."""
    if args.rows:
        keep = [r.strip() for r in args.rows.split(",") if r.strip()]
        jobs = [j for j in jobs if any(j.row == k or j.row.startswith(k) for k in keep)]
    out = Path(out)
    if args.table:  # only the jobs these arguments name: other lengths, budgets or seeds stay apart
        recorded = stored(out)
        rows = [recorded[j.key] for j in jobs if j.key in recorded]
    else:
        rows = run_table(jobs, out, args.jobs)
    text = table(rows, columns)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text + "\n")
    return rows, text
