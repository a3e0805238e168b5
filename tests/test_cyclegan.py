"""CycleGAN (Zhu et al. 2017): its losses, image pool, scores, pair datasets, and the engine contract (resume, DDP)."""
import json

import numpy as np
import pytest
import torch

import dgm
from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.data import load_dataset
from dgm.data.pairs import FASHION_CLASSES, label_map, label_map_of_unit
from dgm.errors import DgmError
from dgm.metrics.translation import class_accuracy, class_iou, confusion, pixel_accuracy
from dgm.models import build_model
from dgm.models.cyclegan import PatchDiscriminator
from dgm.nn.pool import ImagePool
from dgm.objectives.cycle import cycle_loss, identity_loss

from conftest import torchrun

TINY = ["--base-channels", "4", "--res-blocks", "1", "--d-channels", "4"]


def _train(out, *extra, steps=4):
    args = ["train", "cyclegan", "--data", "digits-labels", "--steps", str(steps), "--batch-size", "16", "--out",
            str(out), "--n-samples", "0", "--no-progress", "--log-every", "1", "--ckpt-every", "1000",
            "--eval-every", "100000", *TINY, *extra]
    assert main(args) == 0, args


def test_cycle_and_identity_losses_equal_their_formulas():
    x = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]]])
    r = torch.tensor([[[[0.5, 1.0], [0.0, -0.5]]]])
    # |0.5| + 0 + |1| + |1| over 4 values
    assert cycle_loss(x, r).item() == pytest.approx(2.5 / 4)
    a, b = torch.randn(3, 2, 5, 5), torch.randn(3, 2, 5, 5)
    assert torch.allclose(cycle_loss(a, b), (a - b).abs().sum() / a.numel())
    assert torch.allclose(identity_loss(a, b), (b - a).abs().sum() / a.numel())
    assert identity_loss(a, a).item() == 0


def test_image_pool_returns_stored_images_half_the_time_once_full_and_never_grows():
    pool = ImagePool(5, seed=0)
    first = torch.arange(5.0).view(5, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 5  # filling: returned as given
    stored = old = 0
    seen = set(range(5))
    for i in range(5, 4005):
        out = pool.query(torch.full((1, 1, 1, 1), float(i)))
        assert len(pool) == 5
        v = int(out.item())
        if v != i:
            stored += 1
            assert v in seen  # a stored image is one given earlier
        seen.add(i)
        old += 1
    assert abs(stored / old - 0.5) < 0.03  # binomial(4000, 1/2): std 0.008
    assert ImagePool(0).query(first) is not None and len(ImagePool(0)) == 0


def test_image_pool_state_round_trips():
    a = ImagePool(3, seed=1)
    a.query(torch.randn(4, 1, 2, 2))
    b = ImagePool(3, seed=99)
    b.load_state_dict(a.state_dict())
    x = torch.randn(6, 1, 2, 2)
    assert torch.equal(a.query(x), b.query(x))


def test_scores_equal_hand_computations_on_small_label_maps():
    truth = torch.tensor([[0, 0, 1], [1, 2, 2]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    h = confusion(pred, truth, 4)  # class 3 is absent from both
    assert h.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert pixel_accuracy(h) == pytest.approx(4 / 6)
    assert class_accuracy(h) == pytest.approx((1 / 2 + 2 / 2 + 1 / 2) / 3)
    # IoU: class 0 1/(2+2-1), class 1 2/(2+3-2), class 2 1/(2+1-1); class 3 has no union and is left out
    assert class_iou(h) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    # a class predicted but absent from the truth: IoU 0 counts, per-class accuracy ignores it
    h2 = confusion(torch.tensor([3, 0]), torch.tensor([0, 0]), 4)
    assert class_accuracy(h2) == pytest.approx(0.5) and class_iou(h2) == pytest.approx((1 / 2 + 0) / 2)


def test_fixed_labelling_thresholds():
    raw = torch.tensor([0, 31, 32, 127, 128, 255], dtype=torch.uint8)
    assert label_map(raw, 256).tolist() == [0, 0, 1, 1, 2, 2]
    assert label_map_of_unit(raw.float() / 255).tolist() == [0, 0, 1, 1, 2, 2]


def test_the_two_training_halves_share_no_image():
    d = load_dataset("digits-labels", "train")
    assert not d.aligned and not set(d.source_a.tolist()) & set(d.source_b.tolist())
    assert len(d.source_a) + len(d.source_b) == 1257
    from dgm.data.sources import _digits

    raw = torch.as_tensor(_digits("train").raw)
    assert torch.equal(d.raw_b, label_map(raw[d.source_b], 17).to(torch.uint8))  # Y: maps of the other half only
    test = load_dataset("digits-labels", "test")
    assert test.aligned and torch.equal(test.raw_b, label_map(test.raw_a, 17).to(torch.uint8))
    from dgm.data.pairs import _halves

    a, b = _halves(55000)  # the Fashion-MNIST training part (fashion-labels, fashion-classes)
    assert len(np.intersect1d(a, b)) == 0 and len(np.union1d(a, b)) == 55000


def test_patchgan_receptive_field_is_16_and_is_what_one_score_sees():
    assert PatchDiscriminator(1, 4, 3).receptive_field() == 70  # the paper's C64-C128-C256-C512 PatchGAN
    d = PatchDiscriminator(1, 4, 1)
    assert d.receptive_field() == 16
    # instance norm's statistics are image-wide; the receptive field is the convolutions': measure it without them
    d.net = torch.nn.Sequential(*[torch.nn.Identity() if isinstance(m, torch.nn.InstanceNorm2d) else m for m in d.net])
    x = torch.randn(1, 1, 28, 28, requires_grad=True)
    out = d(x)
    assert out.shape[-2:] == (12, 12)
    out[0, 0, 6, 6].backward()
    rows, cols = (x.grad[0, 0].abs() > 0).nonzero(as_tuple=True)
    assert rows.max() - rows.min() + 1 == 16 and cols.max() - cols.min() + 1 == 16


def test_generator_keeps_odd_sizes():
    m = build_model("cyclegan", {"height": 10, "width": 6, "channels": 3, "levels": 256, "levels_b": 256,
                                 "base_channels": 4, "res_blocks": 1})
    assert m.G(torch.zeros(2, 3, 10, 6)).shape == (2, 3, 10, 6)


@pytest.mark.slow  # multi-second; moved out of the default run to keep it under 10 minutes
def test_cycle_alone_drives_the_cycle_error_down(tmp_path):
    _train(tmp_path / "r", "--no-gan", "--identity-weight", "0", "--lr", "3e-3", steps=100)
    trained = dgm.load(tmp_path / "r")
    torch.manual_seed(0)
    fresh = build_model("cyclegan", trained.config.to_dict())
    x = load_dataset("digits-labels", "test", scale="pm1").domain("a")[:200]
    err = {k: (m.triplets(x, "x_to_y")[2] - x).abs().mean().item() for k, m in (("fresh", fresh), ("trained", trained))}
    assert err["trained"] < 0.5 * err["fresh"], err


def test_resume_is_bit_for_bit_pool_included(tmp_path):
    # the pool is full after the first step, so steps 2-6 swap images at random; the lr decays from step 4 on
    _train(tmp_path / "full", "--pool-size", "8", "--decay-from", "4", steps=6)
    _train(tmp_path / "half", "--pool-size", "8", "--decay-from", "4", steps=3)
    _train(tmp_path / "half", "--resume", steps=6)
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("full", "half"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["optimizers"]["g"]["param_groups"][0]["lr"] == b["optimizers"]["g"]["param_groups"][0]["lr"]
    for pool in ("pool_x", "pool_y"):
        assert a["family_state"][pool]["images"].shape[0] == 8
        assert torch.equal(a["family_state"][pool]["images"], b["family_state"][pool]["images"])
        assert torch.equal(a["family_state"][pool]["generator"], b["family_state"][pool]["generator"])


@pytest.mark.slow  # multi-process (13-15 s); the default run keeps the engine's and the GAN's DDP checks
def test_ddp_two_processes_equal_one_process_on_the_union_batch(tmp_path):
    common = ["train", "cyclegan", "--data", "digits-labels", "--batch-size", "8", "--steps", "2", "--n-samples", "0",
              "--no-progress", "--device", "cpu", "--pool-size", "0", "--eval-every", "1000", *TINY]
    torchrun(common, tmp_path / "ddp")
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("ddp", "one"))
    torch.manual_seed(0)
    init = build_model("cyclegan", json.loads((tmp_path / "one" / "config.json").read_text())["model_config"])
    assert max((v - b["model"][k]).abs().max().item() for k, v in init.state_dict().items()) > 1e-4
    # every weight agrees, but the biases of convolutions followed by instance norm: the norm subtracts them, so their
    # true gradient is 0 and Adam turns the round-off left in it into steps that differ between the two runs
    inert = _inert_biases(init)
    assert inert
    for k in a["model"]:
        if k not in inert:
            torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    # and the two models compute the same functions
    one, two = dgm.load(tmp_path / "one"), dgm.load(tmp_path / "ddp")
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    for net in ("G", "F", "D_X", "D_Y"):
        torch.testing.assert_close(getattr(one, net)(x), getattr(two, net)(x), rtol=1e-4, atol=1e-5)


def _inert_biases(model):
    """Names of the conv biases that an instance norm right after the convolution cancels."""
    out = set()
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Sequential):
            kids = list(mod.named_children())
            for (n, m), (_, nxt) in zip(kids, kids[1:]):
                if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and isinstance(nxt, torch.nn.InstanceNorm2d):
                    out.add(f"{name}.{n}.bias")
    return out


def test_eval_prints_both_directions_and_sample_writes_triplets(tmp_path, capsys):
    _train(tmp_path / "r", steps=2)
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r"), "--metric", "translation"]) == 0
    out = json.loads(capsys.readouterr().out)
    for d in ("x_to_y", "y_to_x"):
        assert {"pixel_accuracy", "class_accuracy", "class_iou", "cycle_error", "fid"} <= set(out[d])
        assert 0 <= out[d]["pixel_accuracy"] <= 1
    assert out["x_to_y"]["fid"] is None and "fid_note" in out["x_to_y"] and out["y_to_x"]["fid"] >= 0
    assert out["provenance"]["step"] == 2
    png = tmp_path / "t.png"
    assert main(["sample", str(tmp_path / "r"), "--translate", "test", "-n", "3", "--out", str(png)]) == 0
    for d in ("x_to_y", "y_to_x"):
        assert (tmp_path / f"t-{d}.png").is_file()
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "r"), "--translate", "test", "--label", "1"]) == 2
    assert "--label is an option of the" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "r"), "-n", "2"]) == 0  # the run's default figure: translations
    assert len(list((tmp_path / "r" / "samples").glob("translate-test-*.png"))) == 2


def test_user_mistakes_are_one_line_errors(tmp_path, tiny_run, capsys):
    base = ["--steps", "1", "--batch-size", "8", "--no-progress", "--n-samples", "0", *TINY]
    assert main(["train", "cyclegan", "--data", "digits", "--out", str(tmp_path / "a"), *base]) == 2
    assert "not a pair dataset" in capsys.readouterr().err
    assert main(["train", "pixelcnn", "--data", "digits-labels", "--out", str(tmp_path / "b"), "--steps", "1"]) == 2
    assert "translation model (cyclegan)" in capsys.readouterr().err
    for objective in ("ebgan", "wgan-gp"):
        assert main(["train", "cyclegan", "--data", "digits-labels", "--objective", objective,
                     "--out", str(tmp_path / "c"), *base]) == 2
        err = capsys.readouterr().err
        assert "cannot use objective" in err and err.count("\n") == 1
    assert main(["train", "cyclegan", "--data", "digits-labels", "--no-gan", "--no-cycle-forward",
                 "--no-cycle-backward", "--identity-weight", "0", "--out", str(tmp_path / "d"), *base]) == 2
    assert "nothing to train" in capsys.readouterr().err
    assert main(["sample", str(tiny_run), "--translate", "test"]) == 2
    assert "--translate needs a translation run" in capsys.readouterr().err
    with pytest.raises(DgmError, match="did you mean 'sneaker'"):
        from dgm.data.pairs import parse_classes
        parse_classes("sneakr,sandal")
    assert len(FASHION_CLASSES) == 10


@pytest.mark.parametrize("objective", ["non-saturating", "hinge"])
def test_other_registered_objectives_train(tmp_path, objective):
    _train(tmp_path / objective, "--objective", objective, steps=2)
    rows = [json.loads(ln) for ln in (tmp_path / objective / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) == 2 and all(np.isfinite(r["loss_d"]) and np.isfinite(r["gan_g"]) for r in train)


def test_pairs_from_two_folders_train_and_score_the_cycle_only(tmp_path, capsys):
    from PIL import Image

    rng = np.random.RandomState(0)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        for i in range(10):
            Image.fromarray((rng.rand(12, 12) * 255).astype("uint8")).save(tmp_path / d / f"{i}.png")
    out = tmp_path / "r"
    assert main(["train", "cyclegan", "--data", "pairs", "--data-dir", str(tmp_path / "a"), "--data-dir-b",
                 str(tmp_path / "b"), "--image-channels", "1", "--steps", "1", "--batch-size", "4", "--out", str(out),
                 "--no-progress", "--n-samples", "0", *TINY]) == 0
    assert dgm.load(out).config.height == 12
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["x_to_y"]["pixel_accuracy"] is None and res["x_to_y"]["cycle_error"] > 0
