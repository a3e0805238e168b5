"""The table and figures of a `dgm bench modes` output folder from its rows.jsonl, also while the bench is still
filling it (a bench that runs seed by seed leaves every row with the seeds it finished; the seeds column says how
many). Uses the bench's own `summarize` / `format_table`, so the numbers are the ones the bench would print.

    python benchmarks/modes_table.py /work/bench/veegan-sim --protocol veegan --copy-to benchmarks/results/X

--copy-to writes table.txt, rows.jsonl (without the snapshot points) and the seed-0 figures there.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dgm.bench.modes import _figures, format_table, length_line, length_note, stopped_note, summarize
from dgm.data import load_dataset


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="a dgm bench modes --out folder (its rows.jsonl)")
    ap.add_argument("--protocol", choices=["veegan", "pacgan"], default=None)
    ap.add_argument("--entries", default=None, help="comma-separated entries to keep (default: all)")
    ap.add_argument("--copy-to", default=None, help="write table.txt, rows.jsonl and figures here")
    a = ap.parse_args(argv)
    log = Path(a.out) / "rows.jsonl"
    if not log.is_file():
        print(f"modes_table: no rows.jsonl in {a.out}", file=sys.stderr)
        return 2
    # a row trained again (e.g. for its snapshots) is appended once more: the last one counts, as in the bench
    latest = {}
    for line in log.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            latest[(r["entry"], r["data"], r["seed"], r["steps"])] = r
    rows = list(latest.values())
    if a.entries:
        keep = a.entries.split(",")
        rows = [r for r in rows if r["entry"] in keep]
    steps = {r.get("length", r["steps"]) for r in rows}  # D updates, or G steps for +g-steps entries
    if len(steps) != 1:
        print(f"modes_table: rows of several lengths {sorted(steps)}; one table per length", file=sys.stderr)
        return 2
    (n,) = steps
    datasets = sorted({r["data"] for r in rows}, key=lambda d: ["ring8", "grid25"].index(d))
    table = format_table(summarize(rows), {d: len(load_dataset(d, "val").means) for d in datasets}, a.protocol,
                         length_line(n, a.protocol))
    table += length_note(rows) + stopped_note(rows)
    cpu = sum(r.get("cpu_seconds", 0.0) for r in rows)
    table += f"\n({len(rows)} runs, {cpu:.0f} CPU-s of training and evaluation in all)"
    print(table)
    if a.copy_to:
        dest = Path(a.copy_to)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "table.txt").write_text(table + "\n")
        with (dest / "rows.jsonl").open("w") as f:
            for r in rows:
                f.write(json.dumps({k: v for k, v in r.items() if k != "snapshots"}) + "\n")
        _figures(rows, datasets, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
