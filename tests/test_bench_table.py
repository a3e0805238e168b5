"""The resumable table runner of the benchmarks (dgm.bench.table): finished jobs are never rerun, a torn last line
is ignored, and the table's mean +- standard error equals numpy's."""
import json
import math

import numpy as np
import pytest

from dgm.bench import table as T


def _fake_run(calls):
    def run(job, out):
        calls.append(job.key)
        return {"key": job.key, "row": job.row, "seed": job.seed, "train": job.train, "evals": job.evals,
                "train_cpu_s": 1.0 + job.seed, "status": "ok", "result": {"score": 0.5 + job.seed / 10}}
    return run


def test_a_rerun_runs_only_the_jobs_not_recorded(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(T, "run_job", _fake_run(calls))
    jobs = [T.Job("a", s, ["gan", "--steps", "5"], [["--metric", "modes"]]) for s in range(2)]
    T.run_table(jobs, tmp_path, parallel=1, echo=lambda *_: None)
    assert len(calls) == 2
    more = jobs + [T.Job("a", 2, ["gan", "--steps", "5"], [["--metric", "modes"]]),
                   T.Job("a", 0, ["gan", "--steps", "6"], [["--metric", "modes"]])]  # other options: a new job
    rows = T.run_table(more, tmp_path, parallel=2, echo=lambda *_: None)
    assert len(calls) == 4 and sorted(calls[2:]) == sorted(j.key for j in more[2:])
    assert [r["key"] for r in rows] == [j.key for j in more]
    with open(tmp_path / "rows.jsonl", "a") as fh:  # a write cut short by a kill
        fh.write('{"key": "x", "ro')
    assert set(T.stored(tmp_path)) == {j.key for j in more}


def test_mean_and_standard_error_equal_numpy():
    v = [0.3, 0.5, 0.9, 0.4]
    m, se, n = T.mean_se(v)
    assert m == pytest.approx(np.mean(v)) and se == pytest.approx(np.std(v, ddof=1) / math.sqrt(4)) and n == 4
    assert T.mean_se([0.7, None, float("nan")]) == (0.7, None, 1)
    assert T.mean_se([]) == (None, None, 0)


def test_table_lists_mean_se_seeds_and_cpu_and_skips_failed_jobs():
    rows = [{"row": "a", "seed": s, "status": "ok", "train_cpu_s": 10.0 * (s + 1), "result": {"x": v}}
            for s, v in enumerate([1.0, 2.0, 3.0])]
    rows.append({"row": "a", "seed": 3, "status": "train exit 1", "train_cpu_s": 1.0, "result": {}})
    rows.append({"row": "b", "seed": 0, "status": "ok", "train_cpu_s": 5.0, "result": {}})
    text = T.table(rows, ["x"], digits=2).splitlines()
    assert text[2] == "| a | 2.00 +- 0.58 | 3 | 20 |"
    assert text[3] == "| b | - | 1 | 5 |"


def test_job_names_are_safe_folder_names():
    j = T.Job("ali (stochastic E, gaussian z)", 3, ["ali"])
    assert j.name == "ali__stochastic_E__gaussian_z_-s3" and "/" not in T.Job("a/b", 0, []).name
    assert json.loads(j.key)[0] == j.row
