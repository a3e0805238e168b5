"""InfoGAN (Chen et al. 2016): codes in G's input, Q on D's body, the mutual-information bound and its CLI."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

import dgm
from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.errors import DgmError
from dgm.models import MODELS
from dgm.objectives.info import gaussian_nll, info_loss, mi_lower_bound
from dgm.sampling.codes import SPAN, STEPS, code_variation_grid

DATA = dict(channels=1, height=8, width=8, levels=17, num_classes=10)
TRAIN = ["--data", "digits", "--batch-size", "32", "--no-progress", "--n-samples", "0", "--ckpt-every", "1000",
         "--eval-every", "1000"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _model(**opts):
    torch.manual_seed(0)
    cls = MODELS.get("infogan")
    return cls(cls.Config.from_dict({**DATA, "hidden": 8, "latent_dim": 4, **opts})).eval()


def test_info_loss_is_ce_plus_unit_gaussian_nll_and_the_bound_is_at_most_log_k():
    logits, cat = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]), torch.tensor([0, 2])
    mean, cont = torch.tensor([[0.1], [-0.3]]), torch.tensor([[0.5], [0.2]])
    ce = -(logits.log_softmax(1)[0, 0] + logits.log_softmax(1)[1, 2]) / 2
    nll = sum(0.5 * (c - m) ** 2 + 0.5 * math.log(2 * math.pi) for c, m in ((0.5, 0.1), (0.2, -0.3))) / 2
    loss, parts = info_loss(logits, cat, mean, cont)
    assert loss.item() == pytest.approx(ce.item() + nll, rel=1e-6)
    assert parts["mi_cat"].item() == pytest.approx(math.log(3) - ce.item(), rel=1e-6)
    assert gaussian_nll(mean, cont).item() == pytest.approx(nll, rel=1e-6)
    # H(c) - CE <= H(c) = log K for any logits; = 0 for uniform Q, -> log K for a Q that is sure and right
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        k = int(torch.randint(2, 12, (1,), generator=g))
        z = torch.randn(16, k, generator=g) * 5
        assert mi_lower_bound(z, torch.randint(0, k, (16,), generator=g)).item() <= math.log(k)
    assert mi_lower_bound(torch.zeros(4, 5), torch.arange(4)).item() == pytest.approx(0.0, abs=1e-6)
    assert mi_lower_bound(100 * F.one_hot(torch.arange(4), 5).float(), torch.arange(4)).item() == pytest.approx(
        math.log(5), abs=1e-6)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_g_reads_z_and_the_codes_and_q_shares_ds_body(arch):
    m = _model(arch=arch, cat_codes=3, cont_codes=2)
    assert m.config.latent_dim == 4 and m.generator.__class__.__name__ and m.code_dim == 5
    z, cat, cont = torch.randn(3, 4), torch.tensor([0, 2, 1]), torch.rand(3, 2) * 2 - 1
    x = m.sample(3, z=z, cat=cat, cont=cont)
    inp = torch.cat([z, F.one_hot(cat, 3).float(), cont], 1)
    assert torch.equal(x, m.generator(inp)) and x.shape == (3, 1, 8, 8)
    # another categorical code, same z: another image
    assert not torch.equal(x, m.sample(3, z=z, cat=(cat + 1) % 3, cont=cont))
    logits, mean = m.q(x)
    assert logits.shape == (3, 3) and mean.shape == (3, 2)
    # the info loss trains D's shared body too (Q has no body of its own)
    m.train()
    loss, _ = info_loss(*m.q(x)[:1], cat, m.q(x)[1], cont)
    loss.backward()
    assert all(p.grad is not None for p in m.discriminator.body.parameters() if p is not m.discriminator.head.weight
               and p is not m.discriminator.head.bias)
    with pytest.raises(ValueError, match="cat"):
        m.sample(3, cat=torch.tensor([0, 3, 1]))
    with pytest.raises(ValueError, match="cont"):
        m.sample(3, cont=torch.zeros(3, 1))


def test_code_variation_grid_rows_are_categories_columns_the_sweep():
    m = _model(cat_codes=3, cont_codes=2)
    grid = code_variation_grid(m, 1, generator=torch.Generator().manual_seed(0))
    assert grid.shape == (3 * STEPS, 1, 8, 8)
    z = m.sample_latent(1, torch.Generator().manual_seed(0))
    for r in range(3):
        for j in (0, STEPS - 1):
            cont = torch.tensor([[0.0, -SPAN + 2 * SPAN * j / (STEPS - 1)]])
            want = m.sample(1, z=z, cat=torch.tensor([r]), cont=cont)
            assert torch.allclose(grid[r * STEPS + j], want[0], atol=1e-6)
    with pytest.raises(DgmError, match="continuous code"):
        code_variation_grid(m, 2)


def _mi(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["mi_cat"] for r in rows if r["split"] == "train"]


def test_the_bound_stays_below_log_k_and_rises_in_a_short_run(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "infogan", *TRAIN, "--arch", "dcgan", "--hidden", "16", "--cat-codes", "5",
                 "--cont-codes", "1", "--steps", "100", "--log-every", "10", "--seed", "0", "--out", str(run)]) == 0
    mi = _mi(run)
    assert len(mi) == 10 and all(v <= math.log(5) for v in mi)
    assert sum(mi[-3:]) / 3 > sum(mi[:3]) / 3 + 0.5, mi  # measured: about 0.2 -> 1.3 nats (log 5 = 1.61)


def test_resume_is_bit_for_bit_and_vary_code_writes_the_figure(tmp_path, capsys):
    full, half = tmp_path / "full", tmp_path / "half"
    args = ["train", "infogan", *TRAIN, "--hidden", "8", "--cat-codes", "3", "--cont-codes", "1", "--log-every", "1"]
    assert main([*args, "--steps", "4", "--out", str(full)]) == 0
    assert main([*args, "--steps", "2", "--out", str(half)]) == 0
    assert main([*args, "--steps", "4", "--out", str(half), "--resume"]) == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(r)) for r in (full, half))
    assert a["model"].keys() == b["model"].keys() and any(k.startswith("q_head.") for k in a["model"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    capsys.readouterr()
    png = tmp_path / "vary.png"
    assert main(["sample", str(full), "--vary-code", "0", "--out", str(png)]) == 0 and png.is_file()
    assert main(["sample", str(full), "--vary-code", "1"]) == 2
    assert "--vary-code 1: the index of a continuous code; this run has 0..0" in capsys.readouterr().err
    assert main(["sample", str(full), "--vary-code", "0", "--interpolate", "lerp"]) == 2
    assert isinstance(dgm.load(full), MODELS.get("infogan"))


@pytest.mark.parametrize("flags,match", [
    (["--cat-codes", "0", "--cont-codes", "0"], "infogan needs a code to learn"),
    (["--cat-codes", "1"], "--cat-codes 1 is a constant code"),
    (["--cat-codes", "-2"], "must be >= 0"),
    (["--info-weight", "-1"], "--info-weight must be >= 0"),
    (["--pack", "2", "--batch-size", "32"], "--pack 2: infogan needs one D output per sample"),
    (["--objective", "ebgan"], "infogan needs a scoring discriminator"),
])
def test_user_errors_are_one_line(flags, match, tmp_path, capsys):
    assert main(["train", "infogan", "--data", "digits", "--steps", "1", "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("model,extra", [("infogan", ["--cat-codes", "3", "--cont-codes", "1"]),
                                         ("ssgan", ["--labels-per-class", "3"])])
def test_ddp_two_processes_equal_one_process(model, extra, tmp_path):
    """Each process takes its slice of the global batch's z, codes and labelled indices (mlp: no batch norm, so the
    averaged gradients of the two halves are the gradient of the whole batch). Feature matching is not covered: the
    squared distance of per-process means is not the distance of the global means."""
    import subprocess
    import sys

    common = ["train", model, "--data", "digits", "--arch", "mlp", "--hidden", "16", "--steps", "3", "--batch-size",
              "32", "--no-progress", "--n-samples", "0", "--device", "cpu", *extra]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgm.cli"]
    ddp = subprocess.run([*cmd, *common, "--out", str(tmp_path / "ddp")], capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("ddp", "one"))
    for k in a["model"]:
        assert torch.allclose(a["model"][k].double(), b["model"][k].double(), rtol=1e-5, atol=1e-7), k


@pytest.mark.parametrize("objective,arch", [("wgan-gp", "mlp"), ("hinge", "dcgan"), ("lsgan", "mlp")])
def test_trains_with_the_usual_objectives(objective, arch, tmp_path):
    run = tmp_path / objective
    assert main(["train", "infogan", *TRAIN, "--objective", objective, "--arch", arch, "--hidden", "8", "--steps", "5",
                 "--log-every", "1", "--out", str(run)]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) == 5 and all(math.isfinite(r["loss_d"]) and r["mi_cat"] <= math.log(10) for r in train)
    assert "loss_g" in train[-1]  # G updated (wgan-gp: at its 5th critic step)
