"""The completion metric (`dgm eval RUN --metric completion --observe REGION`) and `dgm sample --complete-from`
with any-order models: the orders they use and the numbers they report."""
import json

import pytest
import torch

import dgm
from dgm.cli import main
from dgm.data.batching import dataset_batches
from dgm.data.image import fixed_draw
from dgm.errors import DgmError
from dgm.metrics import evaluate
from dgm.nn.orders import max_context_orders, puts_first, region_mask
from dgm.runs import load_data
from dgm.sampling import complete_from_file


@pytest.fixture(scope="module")
def nade_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "nade"
    assert main(["train", "nade", "--data", "digits", "--binarize", "--steps", "3", "--batch-size", "32",
                 "--hidden", "8", "--orders", "8", "--order-family", "s-curve", "--out", str(out),
                 "--n-samples", "0", "--no-progress"]) == 0
    return out


def _split(model):
    data = load_data(model.run_config["data"], "test")
    return list(dataset_batches(fixed_draw(data, torch.Generator().manual_seed(0)), 512, model.device, False))


@pytest.mark.parametrize("region,k", [("left", 1), ("bottom", 2)])
def test_completion_metric_of_an_any_order_run(nade_run, region, k):
    r = evaluate(str(nade_run), ["completion"], observe=region, orders_used=k)
    model = dgm.load(nade_run)
    mask = region_mask(region, 8, 8)
    chosen = max_context_orders(model.orders, mask, k)
    assert r["orders"] == chosen and r["orders_used"] == k and r["observe"] == region
    assert r["order_family"] == "s-curve" and r["hidden_dims"] == 32
    xs = torch.cat([x for x, _ in _split(model)])
    want = model.completion_nll(xs, mask, orders=chosen).double().mean().item()
    assert r["nll_nats"] == pytest.approx(want, rel=1e-6)
    assert r["n"] == xs.shape[0] and r["provenance"]["n_real"] == xs.shape[0]
    json.dumps(r, allow_nan=False)


def test_completion_metric_of_a_raster_run_is_the_hidden_raster_conditionals(tiny_run):
    r = evaluate(str(tiny_run), ["completion"], observe="top")
    model = dgm.load(tiny_run)
    xs = torch.cat([x for x, _ in _split(model)])
    mask = region_mask("top", 8, 8)
    want = -model.conditionals(xs)[:, 0][:, ~mask].double().sum(1).mean().item()
    assert r["orders"] == "raster" and "raster-causal" in r["conditioning"]
    assert r["nll_nats"] == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("args,match", [
    (["--metric", "completion"], "needs --observe"),
    (["--observe", "top"], "option of the completion metric"),
    (["--metric", "nll,completion", "--observe", "top"], "two calls"),
    (["--metric", "completion", "--observe", "top", "--orders-used", "0"], ">= 1"),
])
def test_completion_options_are_checked(nade_run, args, match, capsys):
    assert main(["eval", str(nade_run), *args]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_raster_runs_refuse_several_orders_and_too_many_orders_are_refused(tiny_run, nade_run):
    with pytest.raises(DgmError, match="raster order only"):
        evaluate(str(tiny_run), ["completion"], observe="top", orders_used=2)
    with pytest.raises(DgmError, match="1..8"):
        evaluate(str(nade_run), ["completion"], observe="top", orders_used=9)


def test_sample_complete_from_uses_the_maximum_context_order(nade_run, tmp_path):
    from PIL import Image
    import numpy as np

    model = dgm.load(nade_run)
    png = tmp_path / "img.png"
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(png)
    shown, done = complete_from_file(model, png, 3, "right", generator=torch.Generator().manual_seed(1))
    mask = region_mask("right", 8, 8)
    perm = model.completion_orders(mask)[0]
    assert puts_first(perm, mask)
    assert torch.equal(perm, model.orders[max_context_orders(model.orders, mask, 1)[0]])  # s-curve variant: as is
    x = shown.expand(3, -1, -1, -1).clone()
    x[:, :, ~mask] = 0
    again = model.complete(x, mask, order=perm, generator=torch.Generator().manual_seed(1))
    assert torch.equal(done, again) and torch.equal(done[:, :, mask], x[:, :, mask])
    assert main(["sample", str(nade_run), "-n", "2", "--complete-from", str(png), "--observe", "left",
                 "--out", str(tmp_path / "c.png")]) == 0
