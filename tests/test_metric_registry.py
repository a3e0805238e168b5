"""Metrics are registered objects: each declares what it needs and how it is labelled; a metric registered in one
place is computed, labelled and listed by `evaluate_images`, `evaluate` and the CLI; features are extracted once."""
import json
import re

import numpy as np
import pytest
import torch

import dgm.metrics.images as images_mod
import dgm.metrics.manifold as manifold_mod
from dgm.cli import main
from dgm.errors import DgmError
from dgm.metrics import IMAGE_METRICS, METRICS, Metric, evaluate, evaluate_images, image_metrics, register
from dgm.metrics.evaluate import default_image_metrics
from dgm.metrics.registry import NEEDS

FEATURE_METRICS = ["fid", "kid", "is", "pr", "dc"]
pytestmark = pytest.mark.filterwarnings("ignore:FID.*covariance is singular")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def sets():
    g = torch.Generator().manual_seed(0)
    return torch.rand(40, 1, 8, 8, generator=g), torch.rand(30, 1, 8, 8, generator=g)


@pytest.fixture
def toy_metric():
    """A feature metric defined only here: the distance between the mean real and mean fake feature."""
    def compute(c):
        return {"mean_gap": float(np.linalg.norm(c.real_features.mean(0) - c.fake_features.mean(0)))}

    metric = register(Metric("meangap", "features", compute, label=lambda c: f"mean gap ({c.tag}, {c.m} pairs)",
                             help="distance of the mean real and fake features (a test's toy metric)"))
    try:
        yield metric
    finally:
        METRICS.remove("meangap")
    assert "meangap" not in METRICS and "meangap" not in IMAGE_METRICS


def test_every_registered_metric_is_a_metric_object():
    assert set(METRICS.names()) >= {"nll", "recon", "modes", "fid", "kid", "is", "pr", "dc", "swd", "msssim"}
    for name in METRICS.names():
        m = METRICS.get(name)
        assert isinstance(m, Metric) and m.name == name and m.needs in NEEDS and callable(m.compute)
        assert METRICS.help(name) == m.help != ""
        if m.needs != "run":
            assert callable(m.label) and not m.settings  # image metrics get the seed through the Comparison
    # the public views that used to be hand-written lists, now derived from the registry (order = the old one)
    assert list(IMAGE_METRICS) == [m.name for m in image_metrics()] == FEATURE_METRICS + ["swd", "msssim", "cas", "copying"]
    assert IMAGE_METRICS["fid"] == METRICS.help("fid") and "nll" not in IMAGE_METRICS
    assert default_image_metrics() == FEATURE_METRICS
    assert [m.name for m in image_metrics() if m.uses_network] == FEATURE_METRICS + ["cas", "copying"]  # cas: class probs
    assert [o if isinstance(o, str) else o.name for o in METRICS.get("nll").options] == ["k", "seed"]


def test_a_malformed_metric_is_refused():
    with pytest.raises(ValueError, match="needs must be one of"):
        Metric("x", "pixels", lambda c: {}, help="h")
    with pytest.raises(ValueError, match="options"):
        Metric("x", "features", lambda c: {}, options=("seed",), help="h")
    with pytest.raises(ValueError, match="options"):
        Metric("x", "run", lambda m, d: {}, options=("temperature",), help="h")
    with pytest.raises(ValueError, match="help"):
        Metric("x", "images", lambda c: {})
    with pytest.raises(TypeError):
        register(lambda c: {})
    with pytest.raises(ValueError, match="twice"):
        register(Metric("fid", "features", lambda c: {}, help="h"))


def test_a_metric_registered_in_one_place_is_computed_labelled_and_listed(toy_metric, sets, tmp_path, capsys):
    real, fake = sets
    out = evaluate_images(real, fake, ["meangap", "fid"], features="digits")
    assert out["labels"] == {"fid": "FID (digits classifier features)",
                             "meangap": "mean gap (digits classifier features, 30 pairs)"}
    assert out["mean_gap"] > 0 and out["features"] == "digits"
    assert "meangap" in IMAGE_METRICS and "meangap" not in default_image_metrics()
    # through `dgm eval --real/--fake` and `dgm list metrics`, without touching any other file
    np.savez(tmp_path / "f.npz", images=(fake[:, 0].numpy() * 255).astype(np.uint8))
    assert main(["eval", "--real", "digits", "--fake", str(tmp_path / "f.npz"), "--metric", "meangap"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["labels"] == {"meangap": "mean gap (digits classifier features, 30 pairs)"}
    assert printed["mean_gap"] > 0 and printed["feature_network"].startswith("digits classifier")
    assert main(["list", "metrics"]) == 0
    assert re.search(r"^meangap +distance of the mean real and fake features", capsys.readouterr().out, re.M)


def test_run_metrics_receive_the_options_they_declare(tiny_run):
    seen = []

    def compute(model, data, batch_size, progress, **options):
        seen.append(options)
        return {"toy_n": len(data)}

    register(Metric("toyrun", "run", compute, options=("seed",), help="a test's run metric"))
    try:
        r = evaluate(str(tiny_run), ["toyrun"], seed=7)
        assert seen == [{"seed": 7}] and r["toy_n"] > 0 and "labels" not in r  # not k: it does not declare it
        with pytest.raises(DgmError, match="-k is an option of the nll metric, not of toyrun"):
            evaluate(str(tiny_run), ["toyrun"], seed=7, k=3)  # an option no selected metric uses is refused
        assert len(seen) == 1
        with pytest.raises(DgmError, match="need"):
            evaluate(real="digits", fake="x.npz", metrics=["toyrun"])
    finally:
        METRICS.remove("toyrun")


def test_a_metric_option_declared_in_a_test_is_a_dgm_eval_flag_checked_and_refused_elsewhere(tiny_run, capsys):
    from dgm.options import Option, at_least

    def compute(model, data, batch_size, progress, toy_power=2.0):
        return {"toy_power": toy_power, "toy_n": len(data)}

    def check(ctx):
        if ctx.was_given("toy_power") and ctx.model is not None and not ctx.model.conditional:
            raise DgmError("--toy-power needs a class-conditional run")

    power = Option("toy_power", float, 2.0, "the toy metric's exponent", check=at_least(1.0, "--toy-power"))
    register(Metric("toyopt", "run", compute, options=(power,), help="a test's metric with an option of its own"))
    try:
        assert main(["eval", str(tiny_run), "--metric", "toyopt"]) == 0
        assert json.loads(capsys.readouterr().out)["toy_power"] == 2.0  # the declared default
        assert main(["eval", str(tiny_run), "--metric", "toyopt", "--toy-power", "3"]) == 0
        assert json.loads(capsys.readouterr().out)["toy_power"] == 3.0
        assert "--toy-power" in _help(capsys)
        for argv, needle in ((["--metric", "nll", "--toy-power", "3"], "--toy-power is an option of the toyopt "
                              "metric, not of nll: drop --toy-power or give --metric toyopt"),
                             (["--metric", "toyopt", "--toy-power", "0.5"], "--toy-power must be >= 1.0"),
                             (["--metric", "toyopt", "--toy-power", "inf"], "--toy-power must be a finite number")):
            assert main(["eval", str(tiny_run), *argv]) == 2
            err = capsys.readouterr().err
            assert needle in err and err.count("\n") == 1, err
    finally:
        METRICS.remove("toyopt")
    assert main(["eval", str(tiny_run), "--metric", "nll", "--toy-power", "3"]) == 2  # the flag is gone with it
    assert "unrecognized arguments: --toy-power" in capsys.readouterr().err
    register(Metric("toyopt", "run", compute, options=(power,), check=check, help="the same, checked"))
    try:
        assert main(["eval", str(tiny_run), "--metric", "toyopt", "--toy-power", "3"]) == 2
        assert "needs a class-conditional run" in capsys.readouterr().err
    finally:
        METRICS.remove("toyopt")


def _help(capsys) -> str:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    return capsys.readouterr().out


def test_features_are_extracted_once_for_all_feature_metrics(toy_metric, sets, monkeypatch):
    real, fake = sets
    calls = []
    extract = images_mod.extract

    def counting(net, x, *a, **kw):
        calls.append(len(x))
        return extract(net, x, *a, **kw)

    monkeypatch.setattr(images_mod, "extract", counting)
    evaluate_images(real, fake, FEATURE_METRICS + ["meangap"], features="digits", use_cache=False)
    assert calls == [40, 30]  # reals once, fakes once
    calls.clear()
    evaluate_images(real, fake, FEATURE_METRICS, features="digits")  # reals from the cache after this call
    evaluate_images(real, fake, ["fid", "is"], features="digits")
    assert calls == [40, 30, 30]
    calls.clear()
    out = evaluate_images(real, fake, ["swd", "msssim"], features="digits")
    assert calls == [] and "features" not in out and set(out["labels"]) == {"swd", "msssim"}


def test_pr_and_dc_share_one_knn_pass(sets, monkeypatch):
    real, fake = sets
    passes = []
    knn = manifold_mod.manifold_metrics

    def counting(*a, **kw):
        passes.append((kw["k_pr"], kw["k_dc"]))
        return knn(*a, **kw)

    monkeypatch.setattr(manifold_mod, "manifold_metrics", counting)
    both = evaluate_images(real, fake, ["dc", "pr"], features="digits")
    assert passes == [(3, 5)]
    pr = evaluate_images(real, fake, ["pr"], features="digits")
    dc = evaluate_images(real, fake, ["dc"], features="digits")
    assert passes[1:] == [(3, None), (None, 5)]
    assert {k: both[k] for k in ("precision", "recall", "density", "coverage")} == \
        {"precision": pr["precision"], "recall": pr["recall"], "density": dc["density"], "coverage": dc["coverage"]}
    assert list(both["labels"]) == ["pr", "dc"]  # registration order, whatever order they were asked in


def test_the_shape_check_follows_the_metrics_declaration(sets):
    real, _ = sets
    other = torch.rand(12, 1, 10, 10)
    with pytest.raises(DgmError, match="evaluate fakes of the dataset's size"):
        evaluate_images(real, other, ["swd"])
    out = evaluate_images(real, other, ["msssim"])  # each set on its own: any size
    assert 0 <= out["msssim"] <= 1 and 0 <= out["msssim_real"] <= 1
    with pytest.raises(DgmError, match="needs a run directory"):
        evaluate_images(real, other, ["nll"])
    with pytest.raises(DgmError, match="did you mean 'fid'"):
        evaluate_images(real, other, ["fdi"])
