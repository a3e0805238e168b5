"""FID Inception-v3: standard key names and shapes, safe loading from a user file, FID-specific pooling, errors."""
import pytest
import torch
import torch.nn.functional as F

from dgm.errors import DgmError
from dgm.metrics.inception import FIDInceptionV3, load_inception, resolve_weights

TOP = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "Mixed_5b", "Mixed_5c",
       "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "fc"]

# (unit, in, out, kh, kw) of the BasicConv2d units of one block of each kind, written from the paper / TF graph.
BLOCKS = {
    "Mixed_5b": [("branch1x1", 192, 64, 1, 1), ("branch5x5_1", 192, 48, 1, 1), ("branch5x5_2", 48, 64, 5, 5),
                 ("branch3x3dbl_1", 192, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3),
                 ("branch3x3dbl_3", 96, 96, 3, 3), ("branch_pool", 192, 32, 1, 1)],
    "Mixed_6a": [("branch3x3", 288, 384, 3, 3), ("branch3x3dbl_1", 288, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3),
                 ("branch3x3dbl_3", 96, 96, 3, 3)],
    "Mixed_6b": [("branch1x1", 768, 192, 1, 1), ("branch7x7_1", 768, 128, 1, 1), ("branch7x7_2", 128, 128, 1, 7),
                 ("branch7x7_3", 128, 192, 7, 1), ("branch7x7dbl_1", 768, 128, 1, 1),
                 ("branch7x7dbl_2", 128, 128, 7, 1), ("branch7x7dbl_3", 128, 128, 1, 7),
                 ("branch7x7dbl_4", 128, 128, 7, 1), ("branch7x7dbl_5", 128, 192, 1, 7),
                 ("branch_pool", 768, 192, 1, 1)],
    "Mixed_7a": [("branch3x3_1", 768, 192, 1, 1), ("branch3x3_2", 192, 320, 3, 3), ("branch7x7x3_1", 768, 192, 1, 1),
                 ("branch7x7x3_2", 192, 192, 1, 7), ("branch7x7x3_3", 192, 192, 7, 1),
                 ("branch7x7x3_4", 192, 192, 3, 3)],
    "Mixed_7c": [("branch1x1", 2048, 320, 1, 1), ("branch3x3_1", 2048, 384, 1, 1), ("branch3x3_2a", 384, 384, 1, 3),
                 ("branch3x3_2b", 384, 384, 3, 1), ("branch3x3dbl_1", 2048, 448, 1, 1),
                 ("branch3x3dbl_2", 448, 384, 3, 3), ("branch3x3dbl_3a", 384, 384, 1, 3),
                 ("branch3x3dbl_3b", 384, 384, 3, 1), ("branch_pool", 2048, 192, 1, 1)],
}
# Hand count (per BasicConv2d: cin*cout*kh*kw conv weights; BN weight, bias, running mean, running var = 4*cout):
#   conv weights: stem 171,872; Mixed_5b/5c/5d 254,976 + 276,480 + 284,160; 6a 1,152,000;
#   6b 1,294,336; 6c = 6d 1,687,552; 6e 2,138,112; 7a 1,695,744; 7b 5,038,080; 7c 6,070,272  -> 21,751,136
#   BN channels: 400 + 464 + 496 + 496 + 640 + 1536 + 1728 + 1728 + 1920 + 1280 + 3264 + 3264 = 17,216
#   fc: 2048*1008 + 1008 = 2,065,392
# parameters 21,751,136 + 2*17,216 + 2,065,392 = 23,850,960 (= torchvision's 27,161,264 with 1000 classes,
# minus AuxLogits 3,326,696, plus 8 more classes 8*2049); buffers 2*17,216 = 34,432.
N_PARAMS, N_TOTAL, N_CONVS = 23_850_960, 23_885_392, 94


def _expected(block):
    out = {}
    for unit, cin, cout, kh, kw in BLOCKS[block]:
        out[f"{block}.{unit}.conv.weight"] = (cout, cin, kh, kw)
        for b in ("weight", "bias", "running_mean", "running_var"):
            out[f"{block}.{unit}.bn.{b}"] = (cout,)
    return out


@pytest.fixture(scope="module")
def state():
    torch.manual_seed(0)
    m = FIDInceptionV3()
    for mod in m.modules():  # non-trivial running statistics, so eval-mode BN is really tested
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
    return {k: v for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.fixture(scope="module")
def weights(state, tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "w.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def model(weights):
    return load_inception(str(weights))


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 1, 28, 28, generator=g), torch.rand(2, 3, 32, 32, generator=g)


@pytest.fixture(scope="module")
def outputs(model, images):
    with torch.no_grad():
        return [model(x) for x in images]


def test_standard_names_and_shapes():
    sd = FIDInceptionV3().state_dict()
    assert sorted({k.split(".")[0] for k in sd}) == sorted(TOP)
    assert not any(k.startswith("AuxLogits") for k in sd)
    for block in BLOCKS:
        got = {k: tuple(v.shape) for k, v in sd.items() if k.startswith(block + ".") and "num_batches" not in k}
        assert got == _expected(block), block
    assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert sd["fc.weight"].shape == (1008, 2048) and sd["fc.bias"].shape == (1008,)
    counted = [v for k, v in sd.items() if not k.endswith("num_batches_tracked")]
    assert len(counted) == 5 * N_CONVS + 2
    assert sum(v.numel() for v in counted) == N_TOTAL
    assert sum(p.numel() for p in FIDInceptionV3().parameters()) == N_PARAMS


def test_load_and_shapes(model, outputs):
    assert not model.training and model.weights_sha256 and len(model.weights_sha256) == 16
    assert (model.dim, model.num_classes, model.name) == (2048, 1008, "inception-v3")
    for feats, logits in outputs:
        assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
        assert torch.isfinite(feats).all() and torch.isfinite(logits).all() and feats.std() > 0


@pytest.fixture(scope="module")
def alone(model, images):
    with torch.no_grad():
        return model(images[0][1:])


def test_env_var_reload_is_bit_identical(weights, model, images, alone, monkeypatch):
    monkeypatch.setenv("DGM_INCEPTION_WEIGHTS", str(weights))
    assert resolve_weights() == weights
    again = load_inception()
    assert again.weights_sha256 == model.weights_sha256
    with torch.no_grad():
        feats, logits = again(images[0][1:])
    assert torch.equal(feats, alone[0]) and torch.equal(logits, alone[1])


def test_eval_mode_batch_independent_and_preprocessing(model, images, outputs, alone):
    grey = images[0][1:]
    with torch.no_grad():  # grey -> 3 channels, resize to 299: feeding that directly gives the same result
        rgb299 = model(F.interpolate(grey.repeat(1, 3, 1, 1), size=(299, 299), mode="bilinear", align_corners=False))
    # eval mode: an image's output does not depend on the rest of the batch
    for a, b in ((alone, [o[1:] for o in outputs[0]]), (rgb299, alone)):
        assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-4)


def test_nested_state_dict(state, tmp_path):
    path = tmp_path / "nested.pth"
    torch.save({"state_dict": state, "epoch": torch.tensor(3)}, path)
    loaded = load_inception(str(path)).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_fid_pooling():
    torch.manual_seed(0)
    m = FIDInceptionV3().eval()
    ones = torch.ones(1, 1, 5, 5)
    for b in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7b"):
        assert torch.equal(getattr(m, b).pool(ones), ones), b  # padding excluded: borders stay 1 (torchvision: 4/9)
    with torch.no_grad():
        x = torch.ones(1, 192, 5, 5)  # constant input -> pooled branch of Mixed_5b is spatially constant
        out = m.Mixed_5b(x)[:, -32:]
        assert torch.equal(out, out[:, :, :1, :1].expand_as(out)) and out.abs().sum() > 0
        tv = m.Mixed_5b.branch_pool(F.avg_pool2d(x, 3, 1, 1))  # torchvision's pool counts the padded zeros
        assert not torch.equal(tv, tv[:, :, :1, :1].expand_as(tv))
        spike = torch.zeros(1, 2048, 3, 3)
        spike[:, :, 1, 1] = 1  # max pool spreads the spike unchanged; an average would divide it
        assert torch.equal(m.Mixed_7c.pool(spike), torch.ones(1, 2048, 3, 3))
        out = m.Mixed_7c(spike)[:, -192:]
        assert torch.allclose(out, m.Mixed_7c.branch_pool(torch.ones(1, 2048, 3, 3)))
        assert not torch.allclose(out, m.Mixed_7c.branch_pool(F.avg_pool2d(spike, 3, 1, 1)))


def _one_line_error(path=None, match=None):
    with pytest.raises(DgmError, match=match) as e:
        load_inception(None if path is None else str(path))
    assert "\n" not in str(e.value)
    return str(e.value)


def test_errors(state, tmp_path, monkeypatch):
    monkeypatch.delenv("DGM_INCEPTION_WEIGHTS", raising=False)
    msg = _one_line_error()
    assert "DGM_INCEPTION_WEIGHTS" in msg and "--weights" in msg and "pt_inception-2015-12-05" in msg
    _one_line_error(tmp_path / "nope.pth", "does not exist")
    monkeypatch.setenv("DGM_INCEPTION_WEIGHTS", str(tmp_path / "nope.pth"))
    _one_line_error(None, "DGM_INCEPTION_WEIGHTS")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00\x01not a torch file\n" * 10)
    _one_line_error(garbage, "not a safely loadable torch file")
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    _one_line_error(listed, "dict of tensors")
    bad = dict(state)
    del bad["Mixed_6b.branch7x7_2.conv.weight"]
    bad["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    torch.save(bad, tmp_path / "keys.pth")
    msg = _one_line_error(tmp_path / "keys.pth", "FID Inception weights")
    assert "Mixed_6b.branch7x7_2.conv.weight" in msg and "AuxLogits.fc.weight" in msg
    bad = dict(state, **{"fc.weight": torch.zeros(1000, 2048)})
    torch.save(bad, tmp_path / "shape.pth")
    msg = _one_line_error(tmp_path / "shape.pth", "fc.weight")
    assert "(1000, 2048)" in msg and "(1008, 2048)" in msg


def _torchvision_inception():
    """torchvision's Inception3, or skip where torchvision is missing or broken (CI has none; the GPU machine has)."""
    try:
        from torchvision.models.inception import Inception3
    except Exception as exc:  # noqa: BLE001 - a CUDA-only torchvision build fails at import with various errors
        pytest.skip(f"torchvision not usable here: {exc}")
    return Inception3


def test_equals_torchvision_inception_when_given_torchvision_pooling():
    """Independent reference for the wiring: with torchvision's pooling put back (average pools that count padding,
    an average pool in Mixed_7c), our module and torchvision's Inception3 share one state dict and give the same
    pool3 features and logits. The FID variant differs from it only in those pools."""
    Inception3 = _torchvision_inception()
    torch.manual_seed(0)
    ref = Inception3(num_classes=1008, aux_logits=False, transform_input=False, init_weights=True).eval()
    ours = FIDInceptionV3().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    for m in ours.modules():
        if hasattr(m, "pool"):
            m.pool = torch.nn.AvgPool2d(3, stride=1, padding=1)  # count_include_pad=True, as torchvision
    feats = {}
    ref.avgpool.register_forward_hook(lambda mod, i, o: feats.setdefault("ref", o.flatten(1)))
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits_ref = ref(2 * x - 1)
        f, logits = ours(x)
    torch.testing.assert_close(f, feats["ref"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits, logits_ref, rtol=1e-4, atol=1e-5)
    # and the FID pools do change the output (the check above could not pass by ignoring them)
    fid = FIDInceptionV3().eval()
    fid.load_state_dict(ref.state_dict())
    with torch.no_grad():
        assert not torch.allclose(fid(x)[0], f, rtol=1e-3, atol=1e-4)
