"""`dgm eval` options as the metrics declare them (issue 31) and the cases the registry now refuses or serves
(issue 32): each option where no selected metric reads it, -n with --fake, --data-dir without --real, and StyleGAN's
own truncation mode (w-mean), which every `dgm eval STYLEGAN_RUN --truncation PSI` used to refuse."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dgm.cli import main
from dgm.metrics.registry import IMAGE_OPTIONS, METRICS, NETWORK_OPTIONS, metric_options, option_readers

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _eval(capsys, *argv):
    code = main(["eval", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_option_is_declared_by_a_metric_and_read_by_someone():
    readers = option_readers()
    assert set(metric_options()) == set(readers)
    images = {m.name for m in METRICS.values() if m.needs != "run"}
    for o in IMAGE_OPTIONS:
        assert set(readers[o.name]) == images
    assert set(readers["features"]) == {m.name for m in METRICS.values() if m.uses_network}
    assert {o.name for o in NETWORK_OPTIONS} <= set(readers)
    assert readers["k"] == ["nll"] and readers["per_class"] == ["fid"]
    assert readers["observe"] == readers["orders_used"] == ["completion"]


@pytest.mark.parametrize("flags,needle", [
    (["--metric", "nll", "--no-cache"], "--no-cache is an option of the fid, kid, is, pr, dc, cas, copying metrics, not of nll"),
    (["--metric", "nll", "-n", "20"], "-n is an option of the"),
    (["--metric", "nll", "--save-samples", "{tmp}/s.npz"], "--save-samples is an option of the"),
    (["--metric", "nll", "--observe", "top"], "--observe is an option of the completion metric, not of nll"),
    (["--metric", "completion,nll", "--observe", "top"], "evaluate them in two calls"),
    (["--metric", "completion", "--observe", "top", "--orders-used", "0"], "--orders-used must be >= 1"),
    (["--metric", "fid", "-n", "1"], "-n must be >= 2"),
    (["--metric", "fid", "--truncation", "nan"], "--truncation must be a finite number"),
    (["--metric", "fid", "--data-dir", "{tmp}"], "--data-dir is the folder of the --real dataset's files"),
])
def test_options_that_do_not_apply_are_refused_in_one_line(reference_runs, tmp_path, capsys, flags, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in flags]
    code, out, err = _eval(capsys, str(reference_runs["gpcnn"]), *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "s.npz").exists()


def test_n_with_fake_images_is_refused(tmp_path, capsys):
    np.savez(tmp_path / "f.npz", images=np.zeros((20, 8, 8), np.uint8))
    code, out, err = _eval(capsys, "--real", "digits", "--fake", str(tmp_path / "f.npz"), "--metric", "fid", "-n", "20")
    assert code == 2 and "-n sets how many samples to draw from the run; --fake images are counted" in err


def test_stylegan_runs_are_evaluated_with_truncation_in_w(reference_runs, capsys):
    run = str(reference_runs["stylegan"])
    common = ["--metric", "fid", "-n", "40", "--batch-size", "40"]
    code, out, err = _eval(capsys, run, *common, "--truncation", "0.5")
    assert code == 0, err
    r = json.loads(out)
    assert r["truncation_mode"] == "w-mean" and r["provenance"]["truncation"] == 0.5 and r["fid"] > 0
    code, out, _ = _eval(capsys, run, *common, "--truncation", "1")  # PSI 1 in W: the ordinary sampler
    plain = json.loads(_eval(capsys, run, *common)[1])
    assert code == 0 and json.loads(out)["fid"] == pytest.approx(plain["fid"], rel=1e-6)  # w_avg + (w - w_avg)
    code, _, err = _eval(capsys, run, *common, "--truncation", "1.5")
    assert code == 2 and "in W must be in [-1, 1]" in err


def _header_only(path, shape, member=None):
    """An .npy (or an .npz holding one) whose header claims ``shape`` of bytes but that holds 64 bytes."""
    import io
    import zipfile

    from numpy.lib import format as npformat

    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    buf.write(b"\0" * 64)
    if member is None:
        path.write_bytes(buf.getvalue())
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(member, buf.getvalue())
    return path


@pytest.mark.parametrize("make,needle", [
    (lambda d: _header_only(d / "h.npy", (10 ** 11, 8, 8)), "its header claims an array of shape"),
    (lambda d: _header_only(d / "h.npz", (10 ** 10, 8, 8), "images.npy"), "(images.npy): its header claims"),
    (lambda d: (np.savez(d / "o.npz", images=np.array([[1, 2], [3]], dtype=object)), d / "o.npz")[1],
     "Object arrays cannot be loaded"),
    (lambda d: ((d / "z.npz").write_bytes(b"PK\x03\x04 not a zip"), d / "z.npz")[1], "cannot read"),
])
def test_hostile_numpy_files_are_one_line_before_anything_is_allocated(tmp_path, capsys, make, needle):
    """Issue 32: a 200-byte file whose header claims terabytes made numpy allocate first; an .npz holding an object
    array was a traceback."""
    path = make(tmp_path)
    code, out, err = _eval(capsys, "--real", "digits", "--fake", str(path), "--metric", "fid")
    assert code == 2 and out == "" and needle in err and str(path) in err and err.count("\n") == 1, err
