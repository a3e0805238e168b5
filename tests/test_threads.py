"""Threads that fit the machine (dgm.threads): a dgm process takes the cores other dgm processes leave free, a
training run stores its count for --resume, and a library call leaves the caller's thread count as it was."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from dgm import threads
from dgm.cli import main

from conftest import TINY


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """A private registry of running dgm processes, and a live process that claims ``n`` threads in it."""
    monkeypatch.setenv("DGM_RUNTIME_DIR", str(tmp_path / "rt"))
    procs = []

    def claim(n):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        procs.append(p)
        folder = tmp_path / "rt" / "threads"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / str(p.pid)).write_text(str(n))
        return p

    yield claim
    for p in procs:
        p.kill()
        p.wait()


def test_a_process_takes_its_fair_share_of_the_cores(runtime, monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(8)
        assert threads.default_threads()[0] == 8  # alone
        runtime(3)
        assert threads.default_threads()[0] == 4 and threads.others() == 1
        gone = runtime(1)
        assert threads.default_threads()[0] == 2  # 8 cores, 3 dgm processes
        gone.kill()
        gone.wait()
        assert threads.default_threads()[0] == 4  # a dead process is dropped (and its file removed)
        assert len([f for f in threads._folder().iterdir()]) == 1
        for _ in range(8):
            runtime(1)
        assert threads.default_threads()[0] == 1  # at least one
        (threads._folder() / "junk").write_text("x")  # not a process: ignored
        assert threads.others() == 9
        torch.set_num_threads(2)
        for f in threads._folder().iterdir():
            f.unlink()
        assert threads.default_threads()[0] == 2  # never more than the process had alone (OMP_NUM_THREADS)
    finally:
        torch.set_num_threads(before)


def test_an_adaptive_process_gives_cores_back_and_takes_them_again(runtime, monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        threads.apply(2, adaptive=True)
        assert threads.adapt() == 2
        other = runtime(1)
        assert threads.adapt() == 1 and (threads._folder() / str(os.getpid())).read_text() == "1"
        other.kill()
        other.wait()
        assert threads.adapt() == 2
        threads.apply(2)  # --threads N: fixed
        runtime(1)
        assert threads.adapt() == 2
    finally:
        threads.release(before)
    assert torch.get_num_threads() == before and not (threads._folder() / str(os.getpid())).exists()


def test_using_registers_and_restores(runtime):
    before = torch.get_num_threads()
    with threads.using(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
        assert (threads._folder() / str(os.getpid())).read_text() == "1"
    assert torch.get_num_threads() == before and not (threads._folder() / str(os.getpid())).exists()


def _train(out, *extra):
    return main(["train", "pixelcnn", "--data", "digits", "--binarize", "--batch-size", "32", "--out", str(out),
                 "--n-samples", "0", "--no-progress", "--ckpt-every", "1000", "--log-every", "1", *TINY, *extra])


def _logged_threads(run):
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["threads"] for r in rows if r.get("split") == "train"}


def test_a_run_takes_its_share_and_a_fixed_count_is_stored_for_resume(runtime, tmp_path, monkeypatch):
    from dgm import checkpoint as ckpt

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "cores", lambda: 2)
    torch.set_num_threads(2)
    try:
        assert _train(tmp_path / "alone", "--steps", "2") == 0
        assert torch.get_num_threads() == 2  # the caller's count is restored
        assert json.loads((tmp_path / "alone" / "config.json").read_text())["train"]["threads"] is None
        assert _logged_threads(tmp_path / "alone") == {2}
        assert _train(tmp_path / "full", "--steps", "4", "--threads", "2") == 0
        assert _train(tmp_path / "half", "--steps", "2", "--threads", "2") == 0
        runtime(1)  # another dgm process now shares the 2 cores
        assert _train(tmp_path / "shared", "--steps", "2") == 0
        assert _logged_threads(tmp_path / "shared") == {1}
        assert main(["train", "pixelcnn", "--out", str(tmp_path / "half"), "--resume", "--steps", "4",
                     "--no-progress"]) == 0
        assert json.loads((tmp_path / "half" / "config.json").read_text())["train"]["threads"] == 2
        assert _logged_threads(tmp_path / "half") == {2}
        a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("full", "half"))
        for k in a["model"]:
            assert torch.equal(a["model"][k], b["model"][k]), k
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("argv", [["train", "pixelcnn", "--threads", "0"], ["sample", "RUN", "--threads", "0"],
                                  ["eval", "RUN", "--threads", "-2"]])
def test_bad_thread_counts_are_one_line(tiny_run, tmp_path, capsys, argv):
    argv = [str(tiny_run) if a == "RUN" else a for a in argv] + (["--out", str(tmp_path / "x")]
                                                                 if argv[0] == "train" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--threads must be in 1..4096" in err and err.count("\n") == 1, err
