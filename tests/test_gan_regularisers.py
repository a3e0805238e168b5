"""GAN regularisers are registered parts (``models/gan_regularisers/``): one dataclass each, whose fields are its
flags, its own checks and refusals, and hooks the GAN step calls without naming it. A regulariser registered only
inside a test trains from the command line."""
import dataclasses
import importlib
import json
import pkgutil
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import dgm
from dgm.cli import _field_comments, main
from dgm.errors import DgmError
from dgm.models.gan import GANConfig
from dgm.models.gan_nets import GAN_ARCHS
from dgm.models.gan_regularisers import REGULARISERS, Regulariser, register
from dgm.objectives import OBJECTIVES

SMALL = ["--data", "ring8", "--batch-size", "16", "--hidden", "8", "--layers", "1", "--no-progress", "--n-samples", "0"]


@dataclass
class _ToyL2(Regulariser):
    toy_l2: float = 0.0               # weight of a toy L2 penalty on G's weights (0: off)
    toy_l2_log: bool = True           # log the toy term as toy_l2

    def check(self, config) -> None:
        if self.toy_l2 < 0:
            raise DgmError(f"--toy-l2 must be >= 0, got {self.toy_l2}")

    def g_loss_on_weights(self, step):
        term = self.toy_l2 * sum((p ** 2).sum() for p in step.model.generator.parameters())
        return term, ({"toy_l2": float(term.detach())} if self.toy_l2_log else {})


@pytest.fixture
def toy_regulariser():
    """A regulariser registered by a test only: nothing else in the library names it."""
    register("toy-l2", "a test's L2 penalty on G's weights")(_ToyL2)
    yield "toy-l2"
    REGULARISERS.remove("toy-l2")


def _g_norm(run):
    return float(sum((p.detach().double() ** 2).sum() for p in dgm.load(run).generator.parameters()))


def test_a_registered_regulariser_trains_from_the_cli_without_other_edits(tmp_path, toy_regulariser, capsys):
    base = [*SMALL, "--steps", "3", "--lr", "0.01"]
    assert main(["train", "gan", *base, "--out", str(tmp_path / "plain")]) == 0
    assert main(["train", "gan", *base, "--toy-l2", "100", "--out", str(tmp_path / "toy")]) == 0, \
        capsys.readouterr().err
    cfg = json.loads((tmp_path / "toy" / "config.json").read_text())["model_config"]
    assert cfg["regularisers"] == {"toy-l2": {"toy_l2": 100.0, "toy_l2_log": True}}
    rows = [json.loads(r) for r in (tmp_path / "toy" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("toy_l2", 0) > 0 for r in rows if r["split"] == "train")
    assert _g_norm(tmp_path / "toy") < _g_norm(tmp_path / "plain")  # the term reached G's loss: its weights shrink
    assert dgm.load(tmp_path / "toy").config.toy_l2 == 100.0
    with pytest.raises(SystemExit):
        main(["train", "gan", "--help"])
    text = capsys.readouterr().out
    assert "--toy-l2 TOY_L2" in text and "regulariser toy-l2" in text
    assert main(["train", "gan", *base, "--no-toy-l2-log", "--out", str(tmp_path / "off")]) == 2
    assert "--toy-l2-log: an option of regulariser toy-l2, which is off; give --toy-l2 too" in capsys.readouterr().err
    assert main(["train", "gan", *base, "--toy-l2", "-1", "--out", str(tmp_path / "neg")]) == 2
    assert "--toy-l2 must be >= 0" in capsys.readouterr().err


def test_every_module_of_the_package_is_imported_and_registers_one_regulariser():
    pkg = importlib.import_module("dgm.models.gan_regularisers")
    names = [m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name != "base"]
    assert [n for n in names if f"{pkg.__name__}.{n}" not in sys.modules] == []
    modules = sorted(REGULARISERS.get(r).__module__ for r in REGULARISERS.names())
    assert modules == sorted(f"{pkg.__name__}.{n}" for n in names)  # one regulariser per file


def test_an_unregistered_regulariser_is_gone_everywhere(tmp_path, capsys):
    assert "toy-l2" not in REGULARISERS
    assert main(["train", "gan", *SMALL, "--steps", "1", "--toy-l2", "1", "--out", str(tmp_path / "r")]) == 2
    assert "unrecognized arguments: --toy-l2" in capsys.readouterr().err


def _declared():
    """(kind, part, option name, default) of every option any GAN part declares."""
    out = [("regulariser", n, f.name, f.default) for n in REGULARISERS.names()
           for f in dataclasses.fields(REGULARISERS.get(n))]
    out += [("objective", n, f.name, f.default) for n in OBJECTIVES.names()
            for f in dataclasses.fields(OBJECTIVES.get(n).Options)]
    out += [("arch", n, f.name, f.default) for n in GAN_ARCHS.names()
            for f in dataclasses.fields(GAN_ARCHS.get(n).Options)]
    return out


def test_every_option_has_one_meaning_and_a_help_comment():
    """An option name belongs to one kind of part (two objectives may share gp_weight, two archs attn_res, with one
    default), never to a top-level field; every option has its help comment (the --help text)."""
    common = set(GANConfig.__dataclass_fields__)
    seen = {}
    for kind, part, name, default in _declared():
        assert name not in common, (part, name)
        assert seen.setdefault(name, (kind, default)) == (kind, default), (part, name)
    classes = [REGULARISERS.get(n) for n in REGULARISERS.names()]
    classes += [OBJECTIVES.get(n).Options for n in OBJECTIVES.names()]
    classes += [GAN_ARCHS.get(n).Options for n in GAN_ARCHS.names()]
    for cls in classes:
        assert set(_field_comments(cls)) == {f.name for f in dataclasses.fields(cls)}, cls.__name__


@pytest.mark.parametrize("name", sorted(REGULARISERS.names()))
def test_each_regulariser_is_off_by_default_and_refuses_its_options_when_off(name):
    cls = REGULARISERS.get(name)
    assert not cls().active() and cls.part_name == name
    switch, *rest = [f.name for f in dataclasses.fields(cls)]
    assert name not in GANConfig().regularisers
    for other in rest:
        needle = f"--{other.replace('_', '-')}: an option of regulariser {name}, which is off"
        with pytest.raises(DgmError, match=needle):
            cls.refuse({other: getattr(cls(), other)}, {})
    cls.refuse({switch: getattr(cls(), switch)}, {})  # the switch itself, even off: accepted


def test_the_gan_step_names_no_regulariser_that_acts_through_hooks():
    """R1, packing, the minibatch layers, EMA, instance noise, GDPP and the orthogonal term reach the step through
    hooks only. Unrolling and conditioning still act in the step itself (their options are read there)."""
    src = (Path(dgm.__file__).parent / "training" / "gan_step.py").read_text()
    hooked = [f.name for n in REGULARISERS.names() if n not in ("unroll", "conditional")
              for f in dataclasses.fields(REGULARISERS.get(n))]
    for option in hooked:
        assert not re.search(rf"\b(c|config)\.{option}\b", src), option  # (D's own ``pack`` groups penalties)


def test_hooks_run_in_registration_order_minibatch_discrimination_before_mbstd():
    c = GANConfig(channels=2, height=1, width=1, levels=0, data_kind="points", minibatch_disc=3, minibatch_disc_dim=2,
                  mbstd=True)
    assert list(c.regularisers) == ["minibatch-disc", "mbstd"]
    d = dgm.models.GAN(c).discriminator
    assert [type(layer).__name__ for layer in d.batch] == ["MinibatchDiscrimination", "MinibatchStdDev"]


def test_penalties_are_the_objectives_then_the_regularisers():
    c = GANConfig(arch="stylegan", objective="hinge", r1=4.0, r1_every=3)
    (p,) = c.penalties()
    assert (p.name, p.weight, p.every) == ("r1", 2.0, 3)
    both = GANConfig(objective="wgan-gp", r1=1.0)
    assert [p.name for p in both.penalties()] == ["gradient_penalty", "r1"]
    assert OBJECTIVES.get("wgan-gp").penalties(both) == both.penalties()[:1]
