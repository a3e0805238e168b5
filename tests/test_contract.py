"""One contract for every registered model (``MODELS.names()``), in the spirit of diffusers' ModelTesterMixin.

For each model and each data kind it declares (``data_kinds``): build it from its ``Config.tiny()`` options, train
two steps on the smallest dataset of that kind, save, load from the run and from the single checkpoint file (with
the run directory deleted), sample the right shape and range, evaluate with its default metrics (strict JSON with
provenance), and resume bit for bit. A new model gets all of this by registering; nothing here names a model.
"""
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

import dgm
from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.errors import DgmError
from dgm.figures import can_make
from dgm.metrics import METRICS, evaluate
from dgm.models import MODELS

SMALLEST = {"images": ["--data", "digits", "--binarize"], "points": ["--data", "ring8"], "pairs": ["--data", "digits-labels"],
            "domains": ["--data", "digits:digits-inverted"],
            "audio": ["--data", "tones"], "captioned": ["--data", "captions-digits"]}
SMALLEST_FOR = {"fair": ["--data", "fair-toy"]}  # models that need more than their data kind (a sensitive attribute)


def _cases():
    return [pytest.param(name, kind, id=f"{name}-{kind}") for name in MODELS.names()
            for kind in MODELS.get(name).data_kinds]


def _flags(options):
    out = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        out += ([flag] if v else ["--no-" + flag[2:]]) if isinstance(v, bool) else [flag, str(v)]
    return out


def _train(name, kind, out, steps, tmp_path, *extra):
    cls = MODELS.get(name)
    data = SMALLEST_FOR.get(name, SMALLEST[kind])
    args = ["train", name, *data, "--steps", str(steps), "--batch-size", "16", "--out", str(out),
            "--n-samples", "0", "--no-progress", "--log-every", "1", "--ckpt-every", "1000", "--eval-every", "1000",
            *_flags(cls.Config.tiny()), *extra]
    if cls.source_run is not None:  # fitted to another run (e.g. a prior over a VQ-VAE's codes): train that first
        source = tmp_path / "source"
        if not source.exists():
            _train(cls.source_run, kind, source, 2, tmp_path)
        args = [a for a in args if a not in data] + ["--from", str(source)]
    assert main(args) == 0, args


def _same(a, b, where=""):
    """Nested checkpoint states equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and a != a:
        assert b != b, where
    else:
        assert a == b, where


@pytest.mark.parametrize("name,kind", _cases())
def test_model_contract(name, kind, tmp_path, capsys):
    cls = MODELS.get(name)
    full, half = tmp_path / "full", tmp_path / "half"

    # resume: 2 steps + resume to 4 equals 4 uninterrupted steps, bit for bit (weights, optimizers, RNG, step state)
    _train(name, kind, full, 4, tmp_path)
    _train(name, kind, half, 2, tmp_path)
    _train(name, kind, half, 4, tmp_path, "--resume")
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(r)) for r in (full, half))
    for key in ("step", "model", "optimizers", "rng", "family_state"):
        _same(a.get(key), b.get(key), key)

    # load from the run, then from the checkpoint file alone with the run directory deleted
    model = dgm.load(full)
    assert isinstance(model, cls) and not model.training and model.trained_steps == 4
    file = tmp_path / "alone.pt"
    shutil.copy(ckpt.latest_checkpoint(full), file)
    shutil.rmtree(full)
    alone = dgm.load(file)
    assert type(alone) is cls and alone.config == model.config
    _same(model.state_dict(), alone.state_dict(), "state_dict")

    # samples: the declared shape and range (or a clear error from a model that cannot sample on its own)
    c = alone.config
    png = tmp_path / "s.png"
    if not cls.can_sample:
        with pytest.raises(DgmError):
            alone.sample(3)
        assert main(["sample", str(file), "--figure", "samples", "--out", str(png)]) == 2 and not png.exists()
        assert "can make: " + alone.default_figure in capsys.readouterr().err
    else:
        x = alone.sample(3, generator=torch.Generator().manual_seed(0))
        if alone.points:
            assert x.shape == (3, c.channels) and torch.isfinite(x).all()
        elif c.data_kind == "audio":  # (n, 1, T) mu-law levels; T defaults to the training window
            assert x.shape == (3, 1, c.width) and torch.equal(x, x.round()) and 0 <= x.min() <= x.max() <= 255
        else:
            assert x.shape == (3, c.channels, c.height, c.width)
            if cls.input_scale == "levels":
                assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= c.levels - 1
            else:
                assert x.min() >= -1 and x.max() <= 1
            unit = alone.to_unit(x)
            assert unit.min() >= 0 and unit.max() <= 1
    # the command line on the file alone: the model's default figure (dgm.figures)
    assert alone.default_figure in can_make(alone)
    capsys.readouterr()
    assert main(["sample", str(file), "-n", "2", "--out", str(png)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed and all(Path(p).is_file() and Path(p).parent == tmp_path for p in printed), printed

    # default metrics on the file alone: every metric answers, strict JSON, provenance of the file
    k = 2 if "elbo" in alone.capabilities else None  # -k where it applies (elsewhere it is refused)
    n = 20 if any(METRICS.get(m).needs != "run" for m in alone.default_metrics) else None  # -n: image metrics only
    result = json.loads(json.dumps(evaluate(str(file), None, n=n, k=k, batch_size=64), allow_nan=False))
    prov = result["provenance"]
    assert prov["checkpoint"] == str(file) and prov["step"] == 4
    assert prov["checkpoint_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    run_metrics = [m for m in alone.default_metrics if METRICS.get(m).needs == "run"]
    image_metrics = [m for m in alone.default_metrics if METRICS.get(m).needs != "run"]
    assert set(image_metrics) <= set(result.get("labels", {}))
    values = {k: v for k, v in result.items() if k not in ("run", "step", "checkpoint", "split", "provenance")}
    if run_metrics:
        assert any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()), result
