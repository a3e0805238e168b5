"""MADE and NADE: the any-order contract on the real models (orders of every family, binary and K levels),
normalisation, training through the shared engine (resume bit for bit, DDP)."""
import math
import os
import subprocess
import sys

import pytest
import torch

from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.errors import DgmError
from dgm.models import build_model
from dgm.nn.orders import ORDER_FAMILIES, family_orders, region_mask

from conftest import ROOT, torchrun
from test_anyorder import all_images, one_at_a_time, order_respected

MODELS_AO = ["made", "nade"]


def _model(name, levels=2, h=3, w=4, orders=2, family="random", **kw):
    torch.manual_seed(0)
    cfg = dict(height=h, width=w, levels=levels, orders=orders, order_family=family, hidden=12, **kw)
    if name == "made":
        cfg.setdefault("layers", 2)
    return build_model(name, cfg).double()


@pytest.mark.parametrize("name", MODELS_AO)
@pytest.mark.parametrize("levels", [2, 3])
def test_every_family_order_is_respected(name, levels):
    model = _model(name, levels, orders=8, family="hilbert")
    x = torch.randint(0, levels, (2, 1, 3, 4)).double()
    for family in ORDER_FAMILIES:  # orders of every family, given as permutations (MADE: order 0's degrees)
        for o in family_orders(family, 3, 4)[::2]:
            order_respected(model, x, o)
    for i in (0, 5):  # the model's own orders, each with its own hidden degrees
        order_respected(model, x, i)


@pytest.mark.parametrize("name", MODELS_AO)
@pytest.mark.parametrize("levels", [2, 3])
def test_log_prob_is_the_sum_of_one_at_a_time_conditionals(name, levels):
    model = _model(name, levels, orders=3)
    x = torch.randint(0, levels, (3, 1, 3, 4)).double()
    singles = [model.log_prob(x, order=i) for i in range(3)]
    for i in range(3):
        assert torch.allclose(singles[i], one_at_a_time(model, x, i))
    assert torch.allclose(model.log_prob(x), torch.logsumexp(torch.stack(singles), 0) - math.log(3))


@pytest.mark.parametrize("name", MODELS_AO)
def test_2x2_probabilities_sum_to_one(name):
    model = _model(name, 2, h=2, w=2, orders=4)
    xs = all_images(model)
    assert xs.shape[0] == 16
    for order in (0, 3, None):
        assert torch.allclose(model.log_prob(xs, order=order).exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    three = _model(name, 3, h=1, w=3, orders=2)
    assert torch.allclose(three.log_prob(all_images(three)).exp().sum(), torch.tensor(1.0, dtype=torch.float64))


@pytest.mark.parametrize("name", MODELS_AO)
def test_completion_keeps_observed_pixels_and_its_nll_is_the_hidden_conditionals(name):
    model = _model(name, 2, h=4, w=4, orders=8, family="s-curve")
    x = torch.randint(0, 2, (2, 1, 4, 4)).double()
    obs = region_mask("bottom", 4, 4)
    done = model.complete(x, obs, generator=torch.Generator().manual_seed(0))
    assert torch.equal(done[:, :, obs], x[:, :, obs])
    perm = model.completion_orders(obs)[0]
    cond = model.conditionals(x, order=perm)
    assert torch.allclose(model.completion_nll(x, obs), -cond[:, 0][:, ~obs].sum(1))


def test_made_keeps_its_degrees_per_order_and_in_the_state_dict():
    model = _model("made", orders=3)
    assert model.hidden_degrees.shape == (3, 2, 12) and "hidden_degrees" in model.state_dict()
    assert torch.equal(model.hidden_degrees, _model("made", orders=3).hidden_degrees)  # regenerable from the seed
    assert not torch.equal(model.hidden_degrees[0], model.hidden_degrees[1])
    assert int(model.hidden_degrees.max()) <= 3 * 4 - 2


@pytest.mark.parametrize("name", MODELS_AO)
def test_colour_images_are_refused(name):
    with pytest.raises(DgmError, match="greyscale"):
        build_model(name, dict(channels=3, height=4, width=4, levels=2))


def _train(name, out, *extra):
    return main(["train", name, "--data", "digits", "--binarize", "dynamic", "--batch-size", "32", "--out", str(out),
                 "--n-samples", "0", "--no-progress", "--ckpt-every", "1000", "--log-every", "1", "--hidden", "8",
                 "--orders", "4", *extra])


@pytest.mark.parametrize("name", MODELS_AO)
def test_resume_equals_uninterrupted_run_bit_for_bit(name, tmp_path):
    assert _train(name, tmp_path / "full", "--steps", "4") == 0
    assert _train(name, tmp_path / "half", "--steps", "2") == 0
    assert _train(name, tmp_path / "half", "--steps", "4", "--resume") == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("full", "half"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS_AO)
def test_ddp_two_processes(name, tmp_path):
    """With one order DDP equals one process on the union batch; with several the ranks draw their examples'
    orders from their own streams (like dynamic binarization) and the run completes in sync."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    for orders in ("1", "3"):
        common = ["train", name, "--data", "digits", "--binarize", "--batch-size", "64", "--steps", "3",
                  "--n-samples", "0", "--no-progress", "--device", "cpu", "--hidden", "8", "--orders", orders]
        torchrun(common, tmp_path / f"ddp{orders}")
        if orders == "1":
            single = subprocess.run([sys.executable, "-m", "dgm.cli", *common, "--out", str(tmp_path / "one")],
                                    env=env, capture_output=True, text=True, timeout=300)
            assert single.returncode == 0, single.stderr[-2000:]
            a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("ddp1", "one"))
            for k in a["model"]:
                torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)


def test_nade_chunks_give_the_same_logits(monkeypatch):
    model = _model("nade", 3, orders=2)
    x = torch.randint(0, 3, (5, 1, 3, 4)).double()
    whole = model(x, order=1)
    monkeypatch.setattr(model, "chunk_elements", 2 * 12 * 12)  # two examples at a time
    assert torch.allclose(model(x, order=1), whole)
