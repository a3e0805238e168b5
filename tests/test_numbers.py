"""One rule for numbers (issue 32): every float of every model config, training config, figure option and metric
option is finite, and every seed is in 0..2**32-1; a value outside is one line naming its flag, never a run that
trains on NaN (before, --beta inf, --commitment nan, --lr-g inf, --info-weight inf and --order-seed -1 were
accepted)."""
from __future__ import annotations

import dataclasses

import pytest

from dgm.cli import _field_type, main
from dgm.errors import DgmError
from dgm.figures import figure_options
from dgm.metrics.registry import metric_options
from dgm.models import DATA_FIELDS, MODELS, build_model
from dgm.training import TrainConfig

SPEC = {"images": dict(data_kind="images", channels=1, height=8, width=8, levels=2, num_classes=10),
        "points": dict(data_kind="points", channels=2, height=1, width=1, levels=0, num_classes=0),
        "audio": dict(data_kind="audio", channels=1, height=1, width=200, levels=256, num_classes=0),
        "domains": dict(data_kind="domains", channels=3, height=8, width=8, levels=0, num_classes=10)}
HOSTILE = (float("nan"), float("inf"), float("-inf"))


def _numeric_fields():
    for name in MODELS.names():
        cls = MODELS.get(name)
        kind = cls.data_kinds[0]
        if kind not in SPEC or cls.source_run is not None:  # pairs and models built from another run: below
            continue
        for f in dataclasses.fields(cls.Config):
            if f.name not in DATA_FIELDS and f.name != "sample_rate" and _field_type(f) in (int, float):
                yield name, f.name, _field_type(f)


CASES = list(_numeric_fields())


@pytest.mark.parametrize("model,field,kind", CASES, ids=[f"{m}-{f}" for m, f, _ in CASES])
def test_every_number_of_every_model_config_is_checked(model, field, kind):
    cls = MODELS.get(model)
    base = {**SPEC[cls.data_kinds[0]], **cls.Config.tiny()}
    bad = HOSTILE if kind is float else ((-1, 2**32) if field == "seed" or field.endswith("_seed") else ())
    for v in bad:
        with pytest.raises(DgmError, match="--" + field.replace("_", "-")):
            build_model(model, {**base, field: v})


def test_the_cases_cover_the_models_and_their_float_fields():
    assert len({m for m, _, _ in CASES}) >= 14
    assert ("beta-vae", "beta", float) in CASES and ("vq-vae", "commitment", float) in CASES


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(TrainConfig) if _field_type(f) is float])
def test_every_float_of_the_training_config_is_finite(field):
    for v in HOSTILE:
        with pytest.raises(DgmError, match="--" + field.replace("_", "-")):
            TrainConfig(**{field: v}).validate()


def test_every_float_option_of_sample_and_eval_is_finite():
    options = [o for o in list(figure_options().values()) + list(metric_options().values()) if o.type is float]
    assert {o.name for o in options} >= {"truncation", "seconds"}
    for o in options:
        for v in HOSTILE:
            with pytest.raises(DgmError, match=o.cli):
                o.validate(v)


@pytest.mark.parametrize("argv,flag", [(["train", "vae", "--beta", "inf"], "--beta"),
                                       (["train", "vq-vae", "--commitment", "nan"], "--commitment"),
                                       (["train", "made", "--order-seed", "-1"], "--order-seed"),
                                       (["train", "gan", "--lr-g", "inf"], "--lr-g")])
def test_the_command_line_says_it_in_one_line(tmp_path, capsys, argv, flag):
    assert main([*argv, "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dgm: error: {flag}") and err.count("\n") == 1 and not (tmp_path / "r").exists(), err


WALKER = """
import json, resource, sys, warnings
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
import torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
from dgm.errors import DgmError
from dgm.models import build_model
out = {}
for model, field, kind, base in json.loads(sys.argv[1]):
    values = [-1, 0, 10 ** 12] + ([0.5, 1e30] if kind == "float" else [])
    for v in values:
        try:
            build_model(model, {**base, field: v})
            out[f"{model}.{field}={v}"] = "built"
        except DgmError as e:
            out[f"{model}.{field}={v}"] = "refused: " + str(e)
        except BaseException as e:
            out[f"{model}.{field}={v}"] = f"BUG {type(e).__name__}: {str(e)[:200]}"
print(json.dumps(out))
"""


@pytest.mark.slow  # about 600 model builds in a subprocess: 20-35 s
def test_every_number_of_every_model_config_ends_built_or_refused_never_in_a_traceback(tmp_path):
    """-1, 0, a huge value (10**12, and 1e30 for floats) in every numeric field of every model config: the build
    succeeds (the value means something: 0 = the architecture's default) or is one DgmError line (a size too large
    for the memory included: the walk runs under a 4 GB address-space limit); never another exception."""
    import json
    import subprocess
    import sys

    from conftest import ROOT

    cases = [(m, f, k.__name__, {**SPEC[MODELS.get(m).data_kinds[0]], **MODELS.get(m).Config.tiny()})
             for m, f, k in CASES]
    p = subprocess.run([sys.executable, "-c", WALKER, json.dumps(cases)], capture_output=True, text=True,
                       timeout=900, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    bugs = {k: v for k, v in out.items() if v.startswith("BUG")}
    assert not bugs, bugs
    assert len(out) >= 3 * len(CASES)
    huge = [k for k in out if k.endswith("=1000000000000") and out[k] == "built"]
    from dgm.models.base import _LENGTH_SUFFIXES

    sizes = [k for k in huge if not k.split("=")[0].split(".")[1].endswith(("seed", *_LENGTH_SUFFIXES))]
    assert not sizes, sizes  # a size or count that large is refused (a length of training may be long)
