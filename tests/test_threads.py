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


def test_a_process_takes_the_cores_others_leave_free(runtime, monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(8)
        assert threads.default_threads()[0] == 8  # alone
        runtime(3)
        assert threads.default_threads()[0] == 5 and threads.used_by_others() == 3
        gone = runtime(4)
        assert threads.default_threads()[0] == 1
        gone.kill()
        gone.wait()
        assert threads.default_threads()[0] == 5  # a dead process's claim is dropped (and its file removed)
        assert len(list((threads._folder()).iterdir())) == 1
        runtime(20)
        assert threads.default_threads()[0] == 1  # at least one
        torch.set_num_threads(2)
        (threads._folder()).joinpath("junk").write_text("x")  # not a claim: ignored
        for f in threads._folder().iterdir():
            if f.name != "junk":
                f.unlink()
        assert threads.default_threads()[0] == 2  # never more than the process had alone (OMP_NUM_THREADS)
    finally:
        torch.set_num_threads(before)


def test_using_registers_and_restores(runtime):
    before = torch.get_num_threads()
    with threads.using(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
        assert (threads._folder() / str(os.getpid())).read_text() == "1"
    assert torch.get_num_threads() == before and not (threads._folder() / str(os.getpid())).exists()


def _train(out, *extra):
    return main(["train", "pixelcnn", "--data", "digits", "--binarize", "--batch-size", "32", "--out", str(out),
                 "--n-samples", "0", "--no-progress", "--ckpt-every", "1000", *TINY, *extra])


def test_a_run_stores_its_threads_and_a_resume_computes_with_them(runtime, tmp_path, monkeypatch):
    from dgm import checkpoint as ckpt

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "cores", lambda: 2)
    torch.set_num_threads(2)
    try:
        assert _train(tmp_path / "full", "--steps", "4") == 0
        assert torch.get_num_threads() == 2  # the caller's count is restored
        cfg = json.loads((tmp_path / "full" / "config.json").read_text())
        assert cfg["train"]["threads"] == 2
        assert _train(tmp_path / "half", "--steps", "2") == 0
        runtime(2)  # another dgm process now uses both cores: a fresh run would take 1 thread
        assert threads.default_threads()[0] == 1
        assert main(["train", "pixelcnn", "--out", str(tmp_path / "half"), "--resume", "--steps", "4",
                     "--no-progress"]) == 0
        assert json.loads((tmp_path / "half" / "config.json").read_text())["train"]["threads"] == 2
        a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("full", "half"))
        for k in a["model"]:
            assert torch.equal(a["model"][k], b["model"][k]), k
        assert _train(tmp_path / "busy", "--steps", "1") == 0
        assert json.loads((tmp_path / "busy" / "config.json").read_text())["train"]["threads"] == 1
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
