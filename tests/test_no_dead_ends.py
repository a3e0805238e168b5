"""No dead ends, no lost run (issue 12, items 1 and 4): restarts, resume checks, failed writes, fresh folders."""
from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, TINY
from dgm import checkpoint as ckpt
from dgm.cli import main

TRAIN = ["train", "gated-pixelcnn", "--data", "digits", "--binarize", "--batch-size", "16", "--no-progress",
         "--n-samples", "0", *TINY]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _files(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_run_that_logged_before_diverging_is_archived_on_restart(tmp_path, capsys):
    """NaN at step 2 after a logged step 1: the logs stay; the same command later starts over beside them."""
    out = tmp_path / "D"
    assert main(TRAIN + ["--steps", "4", "--out", str(out), "--lr", "1e30", "--log-every", "1"]) == 3
    assert "loss became nan" in capsys.readouterr().err
    first = json.loads((out / "config.json").read_text())
    logged = (out / "metrics.jsonl").read_text()
    assert logged and not ckpt.list_checkpoints(out)
    assert main(TRAIN + ["--steps", "2", "--out", str(out)]) == 0
    assert "attempts/1" in capsys.readouterr().err
    assert json.loads((out / "attempts" / "1" / "config.json").read_text()) == first  # nothing deleted
    assert (out / "attempts" / "1" / "metrics.jsonl").read_text() == logged
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 2
    assert [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()] == [2, 2]
    assert main(TRAIN + ["--steps", "2", "--out", str(out)]) == 2  # now it holds a checkpoint: refused
    assert "already holds a run" in capsys.readouterr().err


def test_a_failed_first_attempt_leaves_the_folder_as_it_was(tmp_path, capsys):
    """A NaN before anything but config.json was written: config.json is taken back, the folder removed."""
    out = tmp_path / "new" / "D"
    assert main(TRAIN + ["--steps", "4", "--out", str(out), "--lr", "1e30"]) == 3
    assert not (tmp_path / "new").exists()
    killed = tmp_path / "K"  # a run killed before its first checkpoint; a failed restart puts it back
    killed.mkdir()
    (killed / "config.json").write_text('{"model": "pixelcnn"}')
    assert main(TRAIN + ["--steps", "4", "--out", str(killed), "--lr", "1e30"]) == 3
    assert _files(killed) == ["config.json"] and (killed / "config.json").read_text() == '{"model": "pixelcnn"}'


def test_resume_refuses_other_options_and_accepts_equal_ones(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    base = ["train", "gated-pixelcnn", "--out", str(run), "--resume", "--steps", "5", "--no-progress"]
    for flags, named in ((["--hidden", "16"], "--hidden 16 differs from the saved 8"),
                         (["--binarize", "dynamic"], "--binarize dynamic differs from the saved fixed"),
                         (["--data", "fashion-mnist"], "--data fashion-mnist differs from the saved digits"),
                         (["--seed", "1"], "--seed 1 differs from the saved 0")):
        assert main(base + flags) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and named in err, err
    assert main(["train", "pixelcnn", *base[2:]]) == 2
    assert "trained gated-pixelcnn, not pixelcnn" in capsys.readouterr().err
    # the values it was trained with (and the resumable options) are accepted, without a note
    assert main(base + ["--data", "digits", "--binarize", "--batch-size", "32", "--device", "cpu", *TINY]) == 0
    assert "dgm:" not in capsys.readouterr().err
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run))["step"] == 5


def _fail_writes_of(monkeypatch, name: str):
    """Writes into files whose name contains `name` fail with ENOSPC (a disk that fills up then)."""
    real_open = builtins.open

    class Full:
        def __init__(self, f):
            self._f = f

        def write(self, *_):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, attr):
            return getattr(self._f, attr)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def fake_open(file, mode="r", *a, **k):
        f = real_open(file, mode, *a, **k)
        return Full(f) if name in str(file) and any(c in mode for c in "wa") else f

    monkeypatch.setattr(builtins, "open", fake_open)


def test_disk_full_during_training_keeps_the_last_checkpoint_and_no_tmp(tmp_path, capsys, monkeypatch):
    out = tmp_path / "D"
    _fail_writes_of(monkeypatch, "ckpt-00000004")
    assert main(TRAIN + ["--steps", "6", "--ckpt-every", "2", "--out", str(out)]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "ckpt-00000002.pt" in err, err
    assert not list(out.rglob("*.tmp")) and not (out / ".dgm.lock").exists()
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["ckpt-00000002.pt"]
    assert main(["train", "gated-pixelcnn", "--out", str(out), "--resume", "--no-progress"]) == 0  # as it says


def test_atomic_file_leaves_no_tmp_and_keeps_the_old_content(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with ckpt.atomic_file(path, "w") as f:
            f.write("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and _files(tmp_path) == ["f.json"]
    with ckpt.atomic_file(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and _files(tmp_path) == ["f.json"]


def test_without_out_a_folder_locked_by_another_process_is_skipped(tmp_path, capsys):
    """runs/MODEL-DATA is being started by a live process (lock, no config.json yet): take runs/MODEL-DATA-2."""
    busy = tmp_path / "runs" / "gated-pixelcnn-digits"
    busy.mkdir(parents=True)
    lock = {"pid": os.getpid(), "host": socket.gethostname(), "token": "other", "started": "now"}
    (busy / ".dgm.lock").write_text(json.dumps(lock))
    assert main(TRAIN + ["--steps", "1"]) == 0
    assert "run: runs/gated-pixelcnn-digits-2" in capsys.readouterr().out
    assert _files(busy) == [".dgm.lock"]


@pytest.mark.slow  # multi-second; moved out of the default run to keep it under 10 minutes
def test_fresh_folders_claimed_at_once_are_distinct(tmp_path):
    """Processes that pick runs/X at the same instant each lock a different folder (choose and lock are one step)."""
    code = ("import sys, time; from pathlib import Path; from dgm.lock import claim_new\n"
            "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
            "lock = claim_new(Path('runs/x'), lambda p: (p / 'config.json').exists())\n"
            "print(lock.run_dir, flush=True); time.sleep(1.5); (lock.run_dir / 'config.json').write_text('{}')\n"
            "lock.release()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = str(time.time() + 4)
    procs = [subprocess.Popen([sys.executable, "-c", code, start], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(3)]
    chosen = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(chosen) == ["runs/x", "runs/x-2", "runs/x-3"]
