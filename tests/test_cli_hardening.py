"""The CLI boundary of issue 12 beyond the table of test_user_errors.py: help texts, devices, strict JSON,
run-config checks, the translation of OS / memory / checkpoint errors and the model name found anywhere."""
from __future__ import annotations

import dataclasses
import errno
import json
import math
import re

import pytest
import torch

from dgm import cli
from dgm.devices import available, check_device
from dgm.errors import DgmError, user_fault
from dgm.models import DATA_FIELDS, MODELS
from dgm.runs import check_run_config
from dgm.training import TrainConfig


def _train_parser(model: str):
    """The `dgm train MODEL` sub-parser, as `dgm train MODEL --help` prints it."""
    p = cli._build_parser(["train", model, "--help"])
    sub = next(a for a in p._actions if a.dest == "command")
    return sub.choices["train"]


# -- item 8: every option of `dgm train MODEL --help` says what it does and its real default ------------------
@pytest.mark.parametrize("model", MODELS.names())
def test_every_train_option_has_help_and_its_real_default(model):
    t = _train_parser(model)
    options = [a for a in t._actions if a.option_strings and a.dest != "help"]
    assert len(options) > 20
    for a in options:
        text = a.help or ""
        m = re.search(r"\(?default: ([^)]*)\)?", text)
        assert m, f"{a.option_strings[0]} of `dgm train {model} --help` has no default: {text!r}"
        assert text[:m.start()].strip() or text[m.end():].strip(), \
            f"{a.option_strings[0]} has no description: {text!r}"
    by_dest = {a.dest: a.help for a in options}
    for cls in (TrainConfig, MODELS.get(model).Config):
        for f in dataclasses.fields(cls):
            if f.name in DATA_FIELDS or not f.metadata.get("cli", True):
                continue
            d = cli._field_default(f)
            shown = "none" if d is None else "on" if d is True else "off" if d is False else str(d)
            assert by_dest[f.name].replace("%%", "%").endswith(f"(default: {shown})"), (model, f.name)


def test_help_shows_the_subclass_default_and_the_inherited_comment():
    t = _train_parser("beta-vae")
    helps = {a.dest: a.help for a in t._actions}
    assert helps["beta"].endswith("(default: 4.0)")  # BetaVAEConfig's, not VAEConfig's 1.0
    assert helps["latent_dim"].startswith("size of z")  # VAEConfig's comment


def test_field_comments_ignore_a_hash_inside_a_string_default():
    @dataclasses.dataclass
    class C:
        a: str = "#not a comment"
        b: int = 3  # the real comment
        c: float = 1.0

    got = cli._field_comments(C)
    assert got == {"b": "the real comment"}


# -- item 5: options in any order ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,name", [
    (["train", "vae"], "vae"),
    (["--debug", "train", "vae", "--hidden", "8"], "vae"),
    (["train", "--data", "digits", "--steps", "3", "vae"], "vae"),
    (["train", "--hidden", "16", "vae"], "vae"),  # the first pass takes 16 for MODEL; the name is found anyway
    (["train", "vea"], None),
    (["sample", "vae"], None),
    ([], None),
])
def test_model_name_is_found_wherever_it_stands(argv, name):
    assert cli._model_name(argv) == name


def test_model_options_parse_before_the_model_name():
    args = cli._build_parser(["train", "--hidden", "16", "vae"]).parse_args(["train", "--hidden", "16", "vae"])
    assert args.model == "vae" and args.hidden == 16


# -- item 5: devices -------------------------------------------------------------------------------------------
def test_unknown_devices_are_refused_with_the_devices_that_exist():
    assert check_device("cpu") == "cpu"
    assert "cpu" in available()
    for bad in ("tpu", "cuda:99", "CPU", "cuda:x"):
        with pytest.raises(DgmError, match=r"devices here: .*cpu"):
            check_device(bad)
    with pytest.raises(DgmError):
        check_device("auto")
    assert check_device("auto", auto=True) == "auto"
    if torch.cuda.is_available():
        assert check_device("cuda") == "cuda"


# -- item 5: numbers refused at validation time -----------------------------------------------------------------
@pytest.mark.parametrize("field,value,needle", [
    ("epochs", math.inf, "--epochs must be a finite number"),
    ("lr", math.inf, "--lr must be a finite number"),
    ("beta1", math.nan, "--beta1 must be a finite number"),
    ("weight_decay", -1.0, "--weight-decay must be >= 0"),
    ("lr_decay", 0.0, r"--lr-decay must be in \(0, 1\]"),
    ("lr_decay", 1.5, r"--lr-decay must be in \(0, 1\]"),
    ("seed", -1, "--seed must be in 0..4294967295"),
    ("seed", 2 ** 32, "--seed must be in 0..4294967295"),
])
def test_train_config_refuses_out_of_range_numbers(field, value, needle):
    with pytest.raises(DgmError, match=needle):
        TrainConfig(**{field: value}).validate()
    TrainConfig(seed=2 ** 32 - 1, weight_decay=0.0, lr_decay=1.0).validate()  # the limits themselves are fine


# -- item 5: malformed config.json ----------------------------------------------------------------------------
GOOD = {"model": "pixelcnn", "model_config": {"hidden": 8, "conditional": False}, "data": {"name": "digits"},
        "train": {}}


@pytest.mark.parametrize("cfg,needle", [
    ([1, 2], "a JSON list where an object is expected"),
    ("text", "a JSON str where an object is expected"),
    ({k: v for k, v in GOOD.items() if k != "model"}, "missing key 'model'"),
    ({**GOOD, "model": 3}, "'model' must be a JSON string"),
    ({**GOOD, "data": "digits"}, "'data' must be a JSON object"),
    ({**GOOD, "data": {}}, "no dataset 'name'"),
    ({**GOOD, "train": []}, "'train' must be a JSON object"),
    ({**GOOD, "model_config": {"hidden": "eight"}}, "'hidden' has the wrong type"),
    ({**GOOD, "model_config": {"hidden": 8.0}}, "'hidden' has the wrong type"),
    ({**GOOD, "model_config": {"conditional": 1}}, "'conditional' has the wrong type"),
])
def test_malformed_run_configs_are_named_in_one_line(cfg, needle):
    with pytest.raises(DgmError, match=needle) as e:
        check_run_config("RUN/config.json", cfg)
    assert str(e.value).startswith("RUN/config.json: ") and "\n" not in str(e.value)


def test_a_well_formed_run_config_passes():
    check_run_config("c.json", GOOD)
    check_run_config("c.json", {**GOOD, "model": "not-registered"})  # the unknown name is load()'s to report


# -- item 5: exceptions a user can cause become one line at the CLI boundary ------------------------------------
def test_load_state_dict_errors_say_another_model_or_config():
    model = torch.nn.Linear(2, 3)
    for other in (torch.nn.Linear(3, 3), torch.nn.Conv2d(1, 1, 1)):
        with pytest.raises(RuntimeError) as e:
            model.load_state_dict(other.state_dict())
        err = user_fault(e.value)
        assert isinstance(err, DgmError) and "written by another model or config" in str(err)
        assert "\n" not in str(err)


@pytest.mark.parametrize("exc,needle", [
    (MemoryError(), "not enough memory"),
    (OSError(errno.ENOSPC, "No space left on device", "/x/y"), "no space left"),
    (PermissionError(errno.EACCES, "Permission denied", "/x"), "cannot write /x"),
])
def test_main_turns_user_faults_into_one_line(exc, needle, monkeypatch, capsys):
    def boom(args):
        raise exc

    monkeypatch.setattr(cli, "_list", boom)
    assert cli.main(["list", "models"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dgm: error: ") and needle in err
    with pytest.raises(type(exc)):  # --debug shows the traceback
        cli.main(["--debug", "list", "models"])


def test_main_keeps_the_traceback_of_a_bug(monkeypatch):
    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_list", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(["list", "models"])


# -- item 6: printed JSON is strict -------------------------------------------------------------------------------
def test_printed_json_is_strict(capsys):
    cli._print_json({"nll": 1.5, "fid": None})
    assert json.loads(capsys.readouterr().out) == {"nll": 1.5, "fid": None}
    with pytest.raises(DgmError, match="non-finite number in fid"):
        cli._print_json({"nll": 1.5, "fid": math.nan})
    assert capsys.readouterr().out == ""


# -- output files: checked before the work, removed again when the command fails ----------------------------------
def test_output_paths_are_checked_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DgmError, match="is a file, not a folder"):
        cli._check_output(tmp_path / "afile" / "deeper" / "s.png", "--out", make_parent=True)
    with pytest.raises(DgmError, match="does not exist"):
        cli._check_output(tmp_path / "no" / "x.pt", "--save-tensor")
    with pytest.raises(DgmError, match="is a folder"):
        cli._check_output(tmp_path, "--out")
    cli._check_output(tmp_path / "new" / "s.png", "--out", make_parent=True)
    cli._check_output(tmp_path / "x.pt", "--save-tensor")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_failing_command_leaves_no_partial_outputs(tmp_path):
    old = tmp_path / "old.png"
    old.write_text("kept")
    new = tmp_path / "a" / "b" / "new.png"
    with pytest.raises(OSError):
        with cli._undo_on_failure(old, new, None):
            new.parent.mkdir(parents=True)
            new.write_text("half")
            old.write_text("kept")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert old.read_text() == "kept" and not (tmp_path / "a").exists()
    with cli._undo_on_failure(new):  # success keeps what was written
        new.parent.mkdir(parents=True)
        new.write_text("whole")
    assert new.read_text() == "whole"


# -- item 2: options that do not apply are refused ---------------------------------------------------------------
def test_observe_without_complete_from_is_refused(capsys):
    code = cli.main(["sample", "nowhere", "--observe", "left"])
    err = capsys.readouterr().err
    assert code == 2 and "--observe" in err and "--complete-from" in err


def test_a_file_a_library_cannot_read_is_one_line_not_a_disk_problem(tmp_path):
    from PIL import Image, UnidentifiedImageError

    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    with pytest.raises(UnidentifiedImageError) as e:
        Image.open(bad)
    err = user_fault(e.value)
    assert isinstance(err, DgmError) and "x.png" in str(err) and "could not be read" in str(err)
    assert "disk" not in str(err) and "\n" not in str(err)


def test_an_objective_option_is_refused_for_an_objective_that_does_not_read_it():
    from dgm.objectives import OBJECTIVES

    gan = MODELS.get("gan").Config
    knobs = {o for n in OBJECTIVES.names() for o in OBJECTIVES.get(n).options}
    assert {"gp_weight", "clip_value", "margin", "divergence"} <= knobs
    for name in OBJECTIVES.names():
        own = OBJECTIVES.get(name).options
        gan.refuse_unused({"objective": name, **{k: 1 for k in own}, "hidden": 8})  # accepted
        for k in sorted(knobs - set(own)):
            flag = "--" + k.replace("_", "-")
            with pytest.raises(DgmError, match=f"{flag}: not used by objective {name}"):
                gan.refuse_unused({"objective": name, k: 1})
    with pytest.raises(DgmError, match="objective non-saturating"):  # the default objective
        gan.refuse_unused({"gp_weight": 5.0})
    MODELS.get("vae").Config.refuse_unused({"beta": 2.0})  # models without objectives: nothing


def test_train_refuses_an_unused_objective_option_before_writing(tmp_path, capsys):
    out = tmp_path / "g"
    code = cli.main(["train", "gan", "--data", "ring8", "--objective", "hinge", "--gp-weight", "5", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--gp-weight: not used by objective hinge" in err
    assert not out.exists()


def test_a_reader_that_leaves_ends_the_command_quietly(monkeypatch, capsys):
    """`dgm eval RUN | head`: the pipe closes before dgm's output ends; no "dgm: error: ... Broken pipe" line."""
    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_list", closed)
    assert cli.main(["list", "figures"]) == 141
    assert capsys.readouterr().err == ""
