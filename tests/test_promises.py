"""Promises of docs/what-can-go-wrong.md that no other test held when the page was re-read against the tests
(issue 32): a lock from another host is never taken over, and nothing reaches for the network at run time."""
from __future__ import annotations

import json
import socket

import pytest

from conftest import TINY
from dgm.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_lock_from_another_host_is_never_taken_over(tmp_path, capsys):
    out = tmp_path / "D"
    out.mkdir()
    lock = {"pid": 1, "host": "another-machine.example", "token": "t", "started": "yesterday"}
    (out / ".dgm.lock").write_text(json.dumps(lock))
    before = (out / ".dgm.lock").read_bytes()
    assert main(["train", "gated-pixelcnn", "--data", "digits", "--binarize", "--steps", "1", "--no-progress",
                 *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "another-machine.example" in err and "delete" in err, err
    assert (out / ".dgm.lock").read_bytes() == before and sorted(p.name for p in out.iterdir()) == [".dgm.lock"]


def test_train_sample_and_eval_never_touch_the_network(tmp_path, monkeypatch, capsys):
    """Every socket connection fails here; a tiny run trains, samples and is measured (FID with dgm's own feature
    network) all the same."""
    tried = []

    def refuse(self, *a, **k):
        tried.append(a)
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, *a))
    monkeypatch.setenv("DGM_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", "gated-pixelcnn", "--data", "digits", "--binarize", "--steps", "2", "--no-progress",
                 "--n-samples", "4", *TINY, "--out", str(run)]) == 0
    assert main(["sample", str(run), "-n", "4"]) == 0
    assert main(["eval", str(run), "--metric", "nll,fid", "-n", "20"]) == 0
    capsys.readouterr()
    assert tried == []
