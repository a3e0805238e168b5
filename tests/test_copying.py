"""Memorisation checks (issue 38): the three-sample data-copying test of Meehan, Chaudhuri & Dasgupta (2020) and
closer_to_train, against scipy/sklearn on the same inputs and on "models" that copy training or held-out images."""
import json
import os

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import mannwhitneyu, norm

from dgm.cli import main
from dgm.errors import DgmError
from dgm.metrics import evaluate
from dgm.metrics.copying import closer_to_train, copying_test, mann_whitney_z, nearest_neighbours
from dgm.metrics.images import real_images

FASHION_DIR = "/usr/share/datasets/fashion-mnist"

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _scipy_z(x, y):
    """The z of scipy's asymptotic Mann-Whitney test (tie-corrected, no continuity correction), from its p-value."""
    return norm.ppf(mannwhitneyu(x, y, alternative="less", method="asymptotic", use_continuity=False).pvalue)


@pytest.mark.parametrize("m,n,levels", [(30, 50, None), (25, 40, 6), (60, 20, 3)])
def test_mann_whitney_z_equals_scipys(m, n, levels):
    rng = np.random.default_rng(m + n)
    x, y = rng.normal(-0.3, 1, m), rng.normal(0, 1, n)
    if levels:  # ties within and across the two sets
        x, y = np.round(x * levels / 3), np.round(y * levels / 3)
    assert mann_whitney_z(x, y) == pytest.approx(_scipy_z(x, y), abs=1e-9)
    assert mann_whitney_z(y, x) == pytest.approx(-mann_whitney_z(x, y), abs=1e-12)
    assert mann_whitney_z(np.zeros(5), np.zeros(7)) == 0.0  # all tied: no evidence either way


def test_copying_test_cells_and_statistic_equal_an_independent_computation():
    rng = np.random.default_rng(0)
    train, heldout = rng.normal(size=(400, 3)), rng.normal(size=(200, 3))
    fake = np.concatenate([train[:150] + 0.01 * rng.normal(size=(150, 3)), rng.normal(size=(100, 3))])
    r = copying_test(train, heldout, fake, cells=4, min_cell=20, seed=0)
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=4, n_init=10, random_state=0).fit(train)
    cp, cq = km.predict(heldout), km.predict(fake)
    d_p, d_q = cdist(heldout, train).min(1), cdist(fake, train).min(1)  # nearest-training distances, brute force
    np.testing.assert_allclose(r["heldout_distance"], d_p, rtol=1e-12)
    np.testing.assert_allclose(r["fake_distance"], d_q, rtol=1e-12)
    zs, ws = [], []
    for pi in range(4):
        if (cq == pi).sum() >= 20 and (cp == pi).sum() >= 1:
            z = _scipy_z(d_q[cq == pi], d_p[cp == pi])
            assert r["cell_z"][pi] == pytest.approx(z, abs=1e-9)
            zs.append(z)
            ws.append((cp == pi).sum())  # weighted by the cell's share of held-out points
        else:
            assert r["cell_z"][pi] is None
    assert r["cells_used"] == len(zs) >= 2
    assert r["statistic"] == pytest.approx(np.dot(zs, ws) / np.sum(ws), abs=1e-9)
    assert r["statistic"] < -3  # 60 % near-copies


def test_closer_to_train_is_its_stated_share():
    rng = np.random.default_rng(1)
    train, heldout, fake = rng.normal(size=(300, 4)), rng.normal(size=(100, 4)), rng.normal(size=(80, 4))
    share, baseline = closer_to_train(train, heldout, fake)
    assert share == np.mean(cdist(fake, train).min(1) < cdist(fake, heldout).min(1))
    d = cdist(heldout, heldout)
    np.fill_diagonal(d, np.inf)  # each held-out point against the others
    assert baseline == np.mean(cdist(heldout, train).min(1) < d.min(1))


def test_nearest_neighbours_equal_brute_force_and_find_exact_copies_at_zero():
    rng = np.random.default_rng(2)
    ref, q = rng.normal(size=(200, 6)), rng.normal(size=(30, 6))
    q[:5] = ref[[7, 0, 199, 42, 7]]
    d, i = nearest_neighbours(q, ref, k=4, chunk=7)
    full = cdist(q, ref)
    np.testing.assert_array_equal(i, np.argsort(full, 1, kind="stable")[:, :4])
    np.testing.assert_allclose(d, np.sort(full, 1)[:, :4], rtol=1e-12)
    assert (i[:5, 0] == [7, 0, 199, 42, 7]).all() and (d[:5, 0] == 0).all()


def _save(path, images):
    np.savez(path, images=images.numpy())  # floats in [0, 1]: the exact pixels, no uint8 rounding
    return str(path)


def test_copying_on_digits_flags_a_model_that_returns_training_images(tmp_path):
    train, val = real_images({"name": "digits"}, "train"), real_images({"name": "digits"}, "val")
    opts = {"real": "digits", "no_cache": True}
    copier = evaluate(None, ["copying"], {**opts, "fake": _save(tmp_path / "train.npz", train[:360])})
    assert copier["copying_statistic"] < -5 and copier["closer_to_train"] > 0.95
    novel = evaluate(None, ["copying"], {**opts, "fake": _save(tmp_path / "val.npz", val)})  # held-out images
    assert abs(novel["copying_statistic"]) < 2.5
    assert abs(novel["closer_to_train"] - novel["closer_to_train_heldout"]) < 0.1
    assert copier["closer_to_train_heldout"] == novel["closer_to_train_heldout"]  # a property of the data alone
    for r in (copier, novel):
        assert r["n_train"] == len(train) == r["provenance"]["n_train"] and r["provenance"]["features"] == "digits"
        assert "Meehan" in r["labels"]["copying"]
        json.dumps(r, allow_nan=False)


def test_copying_cli_options_and_refusals(tmp_path, capsys):
    fake = _save(tmp_path / "train.npz", real_images({"name": "digits"}, "train")[:100])
    assert main(["eval", "--real", "digits", "--fake", fake, "--metric", "copying", "--cells", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["copying_cells"] == 3 and len(out["copying_cell_z"]) == 3 and out["copying_statistic"] < -3
    for args, msg in ((["--metric", "copying", "--split", "train"], "--split train is the training split"),
                      (["--metric", "copying", "--cells", "0"], "--cells must be >= 1"),
                      (["--metric", "copying", "--cells", "99"], "no k-means cell"),
                      (["--metric", "fid", "--cells", "3"], "--cells")):
        assert main(["eval", "--real", "digits", "--fake", fake, *args]) == 2, args
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (args, err)
    with pytest.raises(DgmError, match="need.* the training images"):
        from dgm.metrics import evaluate_images

        evaluate_images(real_images({"name": "digits"}, "test"), real_images({"name": "digits"}, "val"),
                        ["copying"], features="digits", use_cache=False)


@pytest.mark.slow  # the Fashion-MNIST classifier over 8000 images
@pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason=f"{FASHION_DIR} missing (apt-get install -y "
                    "dataset-fashion-mnist)")
def test_copying_on_fashion_mnist_features():
    from dgm.metrics.extractors import extract, load_features

    cfg = {"name": "fashion-mnist", "data_dir": FASHION_DIR}
    net = load_features("fashion-mnist")
    train = extract(net, real_images(cfg, "train")[:5000])[0]
    test = extract(net, real_images(cfg, "test")[:1000])[0]
    val = extract(net, real_images(cfg, "val")[:1000])[0]
    copier = copying_test(train, test, train[:1000], cells=10)
    novel = copying_test(train, test, val, cells=10)
    assert copier["statistic"] < -10 and abs(novel["statistic"]) < 3
    assert closer_to_train(train, test, train[:1000])[0] == 1.0


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("nearest") / "run"
    assert main(["train", "vae", "--data", "digits", "--steps", "1", "--hidden", "8", "--latent-dim", "2", "--out",
                 str(run), "--batch-size", "16", "--no-progress", "--n-samples", "0", "--eval-every", "1000"]) == 0
    return run


def test_nearest_finds_a_training_image_given_as_a_sample_at_distance_zero(vae_run, tmp_path, capsys):
    import dgm
    from dgm.figures import FIGURES
    from dgm.figures.nearest import nearest_training
    from dgm.metrics.extractors import load_features
    from dgm.runs import load_data

    train = real_images({"name": "digits"}, "train")
    flat = train.flatten(1)
    picks = [i for i in (5, 400, 1256, 77) if (flat == flat[i]).all(1).sum() == 1]  # images without a duplicate
    found = nearest_training(train[picks], train, load_features("digits"), 4)
    for space in ("pixels", "features"):
        assert (found[space]["index"][:, 0] == picks).all(), space
        assert (found[space]["distance"][:, 0] == 0).all() and (found[space]["distance"][:, 1] > 0).all(), space
        assert (np.diff(found[space]["distance"], axis=1) >= 0).all()
    np.testing.assert_allclose(found["pixels"]["distance"], np.sort(cdist(flat[picks].double(), flat.double()),
                                                                     1)[:, :4], rtol=1e-12)
    # the figure end to end: a "model" whose samples are those training images, on the model's own scale
    model = dgm.load(vae_run)
    levels = load_data(model.run_config["data"], "train").tensors()[0]
    model.sample = lambda n, generator=None, **kw: levels[picks][:n]
    out = tmp_path / "nn.png"
    paths = FIGURES.get("nearest").make(model, out, len(picks), 0, nearest=2)
    assert [p.name for p in paths] == ["nn.png", "nn-features.png", "nn.json"] and all(p.is_file() for p in paths)
    table = json.loads((tmp_path / "nn.json").read_text())
    for space in ("pixels", "feature_space"):
        assert [row[0] for row in table[space]["index"]] == picks
        assert [row[0] for row in table[space]["distance"]] == [0.0] * len(picks)
    # the command line: files beside each other in RUN/samples/, refusals in one line
    assert main(["sample", str(vae_run), "--nearest", "3", "-n", "2"]) == 0
    assert sorted(p.name for p in (vae_run / "samples").iterdir()) == \
        ["nearest3-seed0-features.png", "nearest3-seed0.json", "nearest3-seed0.png"]
    capsys.readouterr()
    for args, msg in ((["--nearest", "0"], "--nearest K must be in 1..100"),
                      (["--figure", "samples", "--nearest", "2"], "--nearest makes figure nearest"),
                      (["--figure", "nearest"], "--nearest is needed"),
                      (["--nearest", "2", "--features", "nope"], "nope")):
        assert main(["sample", str(vae_run), *args]) == 2, args
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (args, err)


def test_copying_of_a_run_draws_its_samples_and_reads_its_own_training_split(vae_run, capsys):
    assert main(["eval", str(vae_run), "--metric", "copying", "-n", "100", "--cells", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_fake"] == 100 and out["n_train"] == 1257 and out["provenance"]["checkpoint_sha256"]
    assert out["provenance"]["n_train"] == 1257 and out["copying_cells"] == 2
    assert isinstance(out["copying_statistic"], float) and 0 <= out["closer_to_train"] <= 1
