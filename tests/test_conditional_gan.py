"""Class-conditional GANs (issue 16): CGAN concat, projection discriminator (Miyato & Koyama 2018) with conditional
batch norm in G, ACGAN (Odena et al. 2017) -- D parts against their definitions, the class loss against its
formula, short runs of every mode with three objectives, resume, sampling the labels asked for, user errors."""
import json
import math
from pathlib import Path

import pytest
import torch

from dgm.cli import main
from dgm.models import build_model
from dgm.models.gan_nets.base import label_channels, with_labels
from dgm.objectives import acgan_d_class_loss, acgan_g_class_loss, class_loss, gradient_penalty
from dgm.sampling.latent import interpolation_grid

DIGITS = dict(channels=1, height=8, width=8, levels=17, num_classes=10)
MODES = ("concat", "projection", "ac")


def _gan(cond, arch="dcgan", **opts):
    torch.manual_seed(0)
    return build_model("gan", dict(DIGITS, arch=arch, hidden=8, latent_dim=4, layers=1, conditional=True, cond=cond,
                                   **opts)).eval()


def _images(n=4):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("cond", MODES)
def test_each_mode_gives_different_d_outputs_for_different_labels_on_the_same_image(cond, arch):
    d = _gan(cond, arch).discriminator
    x = _images()
    a, b = torch.zeros(4, dtype=torch.long), torch.full((4,), 7)
    with torch.no_grad():
        if cond == "ac":  # ACGAN's score ignores y; what D says about y is its class head's log p(y | x)
            logp = d.class_logits(x).log_softmax(1)
            out_a, out_b = logp[:, 0], logp[:, 7]
            assert torch.equal(d(x, a), d(x, b))
        else:
            out_a, out_b = d(x, a), d(x, b)
    assert out_a.shape == (4,) and (out_a - out_b).abs().min() > 0


def test_projection_term_is_the_inner_product_of_the_class_embedding_with_ds_features():
    d = _gan("projection").discriminator
    x, y = _images(5), torch.tensor([0, 3, 3, 9, 1])
    with torch.no_grad():
        phi = d.body.features(x)  # no batch layers: the representation is the body's features
        assert torch.equal(phi, d.representation(x))
        plain = d.head(phi)[:, 0]
        term = torch.stack([sum(d.embed.weight[y[i], j] * phi[i, j] for j in range(phi.shape[1]))
                            for i in range(5)])
        assert torch.allclose(d(x, y), plain + term, rtol=1e-5, atol=1e-6)
        assert d.embed.weight.shape == (10, phi.shape[1])


def test_concat_appends_one_hot_label_planes_or_features():
    x = _images(2)
    y = torch.tensor([2, 0])
    planes = with_labels(x, y, 3, flat=False)
    assert planes.shape == (2, 4, 8, 8) and torch.equal(planes[:, :1], x)
    assert torch.equal(planes[0, 1:, 0, 0], torch.tensor([0.0, 0.0, 1.0])) and planes[1, 1].eq(1).all()
    flat = with_labels(x, y, 3, flat=True)
    assert torch.equal(flat, torch.cat([x.flatten(1), torch.tensor([[0.0, 0, 1], [1, 0, 0]])], 1))
    assert with_labels(x, None, 0, flat=False) is x
    m = _gan("concat")
    assert label_channels(m.config) == 10 and m.discriminator.body.body[0].in_channels == 1 + 10
    assert label_channels(_gan("projection").config) == 0


def test_acgan_class_loss_equals_its_formula_on_known_values():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    y = torch.tensor([0, 1])
    by_hand = ((math.log(math.exp(2) + 1 + math.exp(-1)) - 2) + (math.log(2 * math.exp(0.5) + math.exp(3)) - 0.5)) / 2
    assert class_loss(logits, y).item() == pytest.approx(by_hand, rel=1e-6)
    fake, yf = torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([2])
    ce_fake = math.log(2 + math.e) - 0.0
    assert acgan_d_class_loss(logits, y, fake, yf, 0.5).item() == pytest.approx(0.5 * (by_hand + ce_fake), rel=1e-6)
    assert acgan_g_class_loss(fake, yf, 2.0).item() == pytest.approx(2 * ce_fake, rel=1e-6)


def test_gradient_penalty_reads_the_labels_of_a_conditional_critic():
    d = _gan("projection", objective="wgan-gp").discriminator
    x, y = _images(3), torch.tensor([1, 4, 4])
    gp = gradient_penalty(d, x, 1.0, y)
    xs = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(d(xs, y).sum(), xs)
    assert gp.item() == pytest.approx(((g.flatten(1).norm(dim=1) - 1) ** 2).mean().item(), rel=1e-5)
    assert gp.item() != pytest.approx(gradient_penalty(d, x, 1.0, torch.tensor([0, 0, 0])).item(), rel=1e-4)


def test_generator_takes_labels_and_projection_g_has_class_conditional_batch_norm():
    from dgm.nn.conditional import ConditionalBatchNorm

    for cond in MODES:
        m = _gan(cond)
        assert any(isinstance(l, ConditionalBatchNorm) for l in m.generator.modules()) == (cond != "concat")
        z = torch.randn(3, 4)
        with torch.no_grad():
            a, b = m.generator(z, torch.tensor([0, 1, 2])), m.generator(z, torch.tensor([5, 5, 5]))
        assert a.shape == (3, 1, 8, 8) and (a - b).abs().max() > 0


# recorded on the code before conditioning existed (main at 5f3c3ce): old checkpoints must keep loading
OLD_DCGAN_KEYS = """discriminator.body.body.0.bias discriminator.body.body.0.weight discriminator.body.body.2.bias
discriminator.body.body.2.weight discriminator.body.body.3.bias discriminator.body.body.3.num_batches_tracked
discriminator.body.body.3.running_mean discriminator.body.body.3.running_var discriminator.body.body.3.weight
discriminator.body.head.bias discriminator.body.head.weight generator.body.0.bias generator.body.0.weight
generator.body.1.bias generator.body.1.num_batches_tracked generator.body.1.running_mean generator.body.1.running_var
generator.body.1.weight generator.body.3.bias generator.body.3.weight generator.project.0.bias generator.project.0.weight
generator.project.1.bias generator.project.1.num_batches_tracked generator.project.1.running_mean
generator.project.1.running_var generator.project.1.weight""".split()
OLD_MLP_KEYS = """discriminator.body.1.0.bias discriminator.body.1.0.weight discriminator.body.1.3.bias
discriminator.body.1.3.weight generator.0.0.bias generator.0.0.weight generator.0.3.bias generator.0.3.weight""".split()


def test_unconditional_models_keep_their_state_dict_keys():
    m = build_model("gan", dict(DIGITS, hidden=8, latent_dim=4))
    assert not m.conditional and m.config.conditional is False
    assert sorted(m.state_dict()) == OLD_DCGAN_KEYS
    mlp = build_model("gan", dict(channels=2, height=1, width=1, levels=0, hidden=8, layers=1))
    assert sorted(mlp.state_dict()) == OLD_MLP_KEYS


def _train(out, *extra):
    args = ["train", "gan", "--data", "digits", "--batch-size", "16", "--hidden", "8", "--latent-dim", "4",
            "--layers", "1", "--no-progress", "--n-samples", "0", "--conditional", "--out", str(out), *extra]
    assert main(args) == 0


@pytest.mark.parametrize("objective", ["non-saturating", "wgan-gp", "hinge"])
@pytest.mark.parametrize("cond", MODES)
def test_every_mode_trains_with_three_objectives_and_samples_the_labels_asked_for(tmp_path, cond, objective):
    import dgm

    out = tmp_path / "run"
    _train(out, "--cond", cond, "--objective", objective, "--steps", "2", "--n-critic", "1")
    assert json.loads((out / "config.json").read_text())["model_config"]["regularisers"]["conditional"]["cond"] == cond
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert train and all(math.isfinite(r["loss_d"]) for r in train)
    assert ("class_loss_d" in train[-1]) == (cond == "ac")
    m = dgm.load(out)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    threes = m.sample(4, y=torch.full((4,), 3), generator=gen())
    assert threes.shape == (4, 1, 8, 8)
    z = m.sample_latent(4, gen())
    with torch.no_grad():
        m.generator.eval()
        assert torch.equal(threes, m.generator(z, torch.full((4,), 3)))
    assert not torch.equal(threes, m.sample(4, y=torch.full((4,), 8), generator=gen()))
    assert torch.equal(m.sample(4, generator=gen()), m.sample(4, y=torch.arange(4), generator=gen()))


@pytest.mark.parametrize("cond,objective", [("concat", "ebgan"), ("projection", "non-saturating")])
def test_mlp_arch_and_energy_concat_and_unrolling_train(tmp_path, cond, objective):
    extra = ["--arch", "mlp"] if objective == "ebgan" else ["--unroll-steps", "1"]
    _train(tmp_path / "r", "--cond", cond, "--objective", objective, "--steps", "2", *extra)


def _final(run):
    return torch.load(sorted((Path(run) / "checkpoints").glob("ckpt-*.pt"))[-1], weights_only=True)


@pytest.mark.parametrize("cond,objective", [("projection", "wgan-gp"), ("ac", "hinge")])
def test_conditional_run_resumes_bit_for_bit(tmp_path, cond, objective):
    common = ["--cond", cond, "--objective", objective, "--n-critic", "2", "--ema-decay", "0.5", "--ckpt-every", "2",
              "--deterministic"]
    _train(tmp_path / "full", *common, "--steps", "4")
    _train(tmp_path / "half", *common, "--steps", "2")
    assert main(["train", "gan", "--out", str(tmp_path / "half"), "--resume", "--steps", "4", "--no-progress"]) == 0
    a, b = _final(tmp_path / "full"), _final(tmp_path / "half")
    assert a["step"] == b["step"] == 4 and set(a["model"]) == set(b["model"])
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_sample_cli_label_and_interpolation_keep_the_label(tmp_path, capsys):
    import dgm

    out = tmp_path / "run"
    _train(out, "--cond", "projection", "--steps", "1")
    assert main(["sample", str(out), "--label", "4", "-n", "3", "--save-tensor", str(tmp_path / "s.pt"),
                 "--out", str(tmp_path / "s.png")]) == 0
    m = dgm.load(out)
    want = m.sample(3, y=torch.full((3,), 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.load(tmp_path / "s.pt"), want)
    assert main(["sample", str(out), "--interpolate", "slerp", "--steps", "3", "-n", "2", "--label", "6",
                 "--out", str(tmp_path / "i.png")]) == 0
    gen = torch.Generator().manual_seed(5)
    grid = interpolation_grid(m, 2, 3, "lerp", generator=gen)  # default: row i of class i
    z0 = torch.randn(2, 4, generator=torch.Generator().manual_seed(5))
    ends = m.sample(2, y=torch.tensor([0, 1]), z=z0)  # another batch size: equal up to rounding
    assert torch.allclose(grid[[0, 3]], ends, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(grid[[0, 3]], m.sample(2, y=torch.tensor([5, 5]), z=z0), rtol=1e-5, atol=1e-7)
    capsys.readouterr()


@pytest.mark.parametrize("argv,msg", [
    (["--data", "ring8", "--conditional"], "needs a labelled dataset"),
    (["--data", "digits", "--cond", "ac"], "give --conditional"),
    (["--data", "digits", "--conditional", "--ac-weight", "2"], "give --cond ac"),
    (["--data", "digits", "--conditional", "--cond", "projection", "--objective", "ebgan"], "auto-encoder D"),
    (["--data", "digits", "--conditional", "--pack", "2"], "--pack"),
    (["--data", "digits", "--conditional", "--cond", "ac", "--unroll-steps", "1"], "--unroll-steps"),
    (["--data", "digits", "--conditional", "--cond", "cgan"], "--cond must be one of"),
    (["--data", "ring8", "--arch", "veegan", "--conditional"], "needs a labelled dataset"),
])
def test_conditional_user_errors_are_one_line(tmp_path, capsys, argv, msg):
    assert main(["train", "gan", *argv, "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dgm: error:") and msg in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_ddp_conditional_two_processes_equal_one_process(tmp_path):
    import subprocess
    import sys

    # the MLP G has no batch norm (per-process batch statistics would differ from the union batch's), and hinge
    # has no penalty (WGAN-GP's interpolation weights come from each process's global RNG, also unconditionally)
    common = ["train", "gan", "--data", "digits", "--arch", "mlp", "--layers", "1", "--conditional", "--cond", "ac",
              "--objective", "hinge", "--steps",
              "3", "--batch-size", "16", "--hidden", "8", "--latent-dim", "4", "--no-progress", "--n-samples", "0",
              "--device", "cpu"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgm.cli"]
    ddp = subprocess.run([*cmd, *common, "--out", str(tmp_path / "ddp")], capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = _final(tmp_path / "ddp"), _final(tmp_path / "one")
    for k in a["model"]:
        assert torch.allclose(a["model"][k].float(), b["model"][k].float(), rtol=1e-5, atol=1e-6), k
