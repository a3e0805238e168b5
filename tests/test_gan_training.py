"""The GAN step in the shared engine: unrolling, every objective from the CLI, resume, DDP, mode coverage."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dgm.cli import main
from dgm.data import load_dataset
from dgm.models import build_model
from dgm.objectives import OBJECTIVES
from dgm.training import STEPS, TrainConfig, Trainer

POINTS = dict(channels=2, height=1, width=1, levels=0)


def _step(tmp_path, objective="non-saturating", optimizer=None, **opts):
    torch.manual_seed(0)
    model = build_model("gan", dict(POINTS, objective=objective, hidden=32, layers=2, **opts))
    step = STEPS.get("gan")(model)
    data = load_dataset("ring8", "val")
    cfg = TrainConfig(steps=10, batch_size=64, progress=False, n_samples=0, optimizer=optimizer)
    Trainer(step, data, cfg, tmp_path)
    return step, data


def _grads(loss, params):
    return torch.autograd.grad(loss, list(params), retain_graph=True)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_unrolling_k0_is_the_ordinary_step_and_k_steps_take_ds_own_update(tmp_path, optimizer):
    step, data = _step(tmp_path, optimizer=optimizer)
    m = step.model
    d = m.discriminator
    real = data.points[:64]
    z = torch.randn(64, m.config.latent_dim)
    fake = m.generator(z)
    before = copy.deepcopy(d.state_dict())
    g_params = list(m.generator.parameters())

    ordinary = step.obj.g(d(fake))
    unrolled0 = step.unrolled_g_loss(real, fake, 0)
    assert torch.equal(ordinary, unrolled0)
    assert all(torch.equal(a, b) for a, b in zip(_grads(ordinary, g_params), _grads(unrolled0, g_params)))

    # K = 1 equals G's loss against a copy of D that took one real optimizer step on this batch
    for _ in range(2):  # give the optimizer some state (moments) first
        loss = step.obj.d(d(real), d(fake.detach()))
        step.engine.update(loss, "d")
    before = copy.deepcopy(d.state_dict())
    opt_state = copy.deepcopy(step.engine.optimizers["d"].state_dict())
    unrolled1 = step.unrolled_g_loss(real, fake, 1)
    d_copy = copy.deepcopy(d)
    opt_copy = type(step.engine.optimizers["d"])(d_copy.parameters(), **step.engine.optimizers["d"].defaults)
    opt_copy.load_state_dict(opt_state)
    opt_copy.zero_grad()
    step.obj.d(d_copy(real), d_copy(fake.detach())).backward()
    opt_copy.step()
    reference = step.obj.g(d_copy(fake))
    assert unrolled1.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-7)

    # ... but its gradient for G differs from the ordinary one (the discriminator's reaction term)
    ordinary = step.obj.g(d(fake))
    g_unrolled = torch.cat([g.flatten() for g in _grads(unrolled1, g_params)])
    g_ordinary = torch.cat([g.flatten() for g in _grads(ordinary, g_params)])
    assert (g_unrolled - g_ordinary).norm() > 1e-6 * g_ordinary.norm()
    # the real discriminator is untouched by its unrolled copies: same parameters, no gradients
    unrolled5 = step.unrolled_g_loss(real, fake, 5)
    for p in d.parameters():
        p.grad = None
    unrolled5.backward()
    assert all(torch.equal(v, before[k]) for k, v in d.state_dict().items())
    assert all(p.grad is None for p in d.parameters())
    assert all(p.grad is not None for p in g_params)


def test_unrolling_works_with_spectral_norm(tmp_path):
    step, data = _step(tmp_path, spectral_norm=True, unroll_steps=2)
    m = step.model
    fake = m.generator(torch.randn(16, m.config.latent_dim))
    loss = step.unrolled_g_loss(data.points[:16], fake, 2)
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("objective", OBJECTIVES.names())
def test_train_gan_cli_every_objective(tmp_path, objective, capsys):
    out = tmp_path / objective
    rc = main(["train", "gan", "--objective", objective, "--data", "ring8", "--steps", "6", "--batch-size", "32",
               "--hidden", "16", "--layers", "1", "--no-progress", "--n-samples", "0", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["family"] == "gan" and cfg["model_config"]["objective"] == objective
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert train and all(torch.isfinite(torch.tensor(r["loss_d"])) for r in train)
    val = [r for r in rows if r["split"] == "val"][-1]
    assert set(val) >= {"modes", "high_quality"}
    assert (out / "checkpoints").is_dir()


def _final(run):
    ck = sorted((Path(run) / "checkpoints").glob("ckpt-*.pt"))[-1]
    return torch.load(ck, weights_only=True)


def _train(out, *extra):
    args = ["train", "gan", "--data", "ring8", "--batch-size", "32", "--hidden", "16", "--layers", "2",
            "--no-progress", "--n-samples", "0", "--ckpt-every", "3", "--deterministic", "--out", str(out), *extra]
    assert main(args) == 0


@pytest.mark.parametrize("objective,opts", [("wgan-gp", ["--instance-noise", "0.1", "--noise-decay-steps", "10"]), ("began", []),
                                            ("non-saturating", ["--unroll-steps", "2"]),
                                            ("non-saturating", ["--unroll-steps", "2", "--update-order", "simultaneous"]),
                                            ("minimax", ["--update-order", "simultaneous", "--spectral-norm"]),
                                            ("non-saturating", ["--gdpp", "1", "--update-order", "simultaneous"])])
def test_resumed_gan_run_equals_uninterrupted(tmp_path, objective, opts):
    common = ["--objective", objective, *opts]
    _train(tmp_path / "full", *common, "--steps", "6")
    _train(tmp_path / "half", *common, "--steps", "3")
    assert main(["train", "gan", "--out", str(tmp_path / "half"), "--resume", "--steps", "6", "--no-progress"]) == 0
    a, b = _final(tmp_path / "full"), _final(tmp_path / "half")
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["family_state"] == b["family_state"]
    # On CUDA the gradient penalty's double backward is not bit-repeatable even with --deterministic: two fresh
    # 6-step runs on an H100 differed by 3.7e-9 in D's Adam second moment (weights equal). Bit for bit on CPU.
    exact = not (torch.cuda.is_available() and objective == "wgan-gp")
    for name in ("d", "g"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        for i in sa:
            for k, v in sa[i].items():
                if torch.is_tensor(v):
                    assert torch.equal(v, sb[i][k]) if exact else torch.allclose(v, sb[i][k], rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # 11 s each; the default run keeps the engine's DDP check (tests/test_engine.py)
@pytest.mark.parametrize("extra", [[], ["--update-order", "simultaneous"]])
def test_ddp_gan_two_processes_equal_one_process(tmp_path, extra):
    common = ["train", "gan", "--data", "ring8", "--steps", "3", "--batch-size", "32", "--hidden", "16",
              "--no-progress", "--n-samples", "0", "--device", "cpu", *extra]
    env_cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgm.cli"]
    ddp = subprocess.run([*env_cmd, *common, "--out", str(tmp_path / "ddp")], capture_output=True, text=True,
                         timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert "2 process(es)" in ddp.stdout
    assert main([*common[:], "--out", str(tmp_path / "one")]) == 0
    a, b = _final(tmp_path / "ddp"), _final(tmp_path / "one")
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-7), k


def test_gan_sample_and_eval_modes(tmp_path, capsys):
    out = tmp_path / "run"
    _train(out, "--steps", "4")
    capsys.readouterr()
    assert main(["eval", str(out), "--metric", "modes"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) >= {"modes", "high_quality", "reverse_kl"}
    assert 0 <= res["modes"] <= 8 and 0 <= res["high_quality"] <= 1
    assert main(["eval", str(out), "--metric", "nll"]) == 2
    assert "no log_prob" in capsys.readouterr().err
    assert main(["sample", str(out), "-n", "200", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_gan_on_images_dcgan_cli(tmp_path, capsys):
    out = tmp_path / "dc"
    rc = main(["train", "gan", "--data", "digits", "--steps", "3", "--batch-size", "16", "--hidden", "8",
               "--latent-dim", "8", "--no-progress", "--n-samples", "4", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_config"]["arch"] == "dcgan" and cfg["data"]["scale"] == "pm1"
    import dgm

    m = dgm.load(out)
    x = m.sample(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert main(["sample", str(out), "-n", "4", "--out", str(tmp_path / "g.png")]) == 0


def test_gan_user_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "gan", "--objective", "wgan-pg", "--data", "ring8", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'wgan-gp'" in err and "Traceback" not in err
    assert main(["train", "gan", "--divergence", "chi", "--data", "ring8", "--out", str(tmp_path / "b")]) == 2
    assert "--divergence" in capsys.readouterr().err
    assert main(["train", "pixelcnn", "--data", "ring8", "--out", str(tmp_path / "c")]) == 2
    assert "dgm train gan --data ring8" in capsys.readouterr().err
    assert main(["train", "gan", "--arch", "dcgan", "--data", "ring8", "--out", str(tmp_path / "d")]) == 2
    assert "--arch mlp" in capsys.readouterr().err


def _ring_modes(objective, seed, steps, **opts):
    from dgm.metrics.modes import modes

    torch.manual_seed(seed)
    model = build_model("gan", dict(POINTS, objective=objective, hidden=128, layers=3, **opts))
    step = STEPS.get("gan")(model)
    data = load_dataset("ring8", "train")
    cfg = TrainConfig(steps=steps, batch_size=256, seed=seed, progress=False, n_samples=0, log_every=10 ** 6,
                      ckpt_every=10 ** 6)
    import tempfile

    Trainer(step, data, cfg, Path(tempfile.mkdtemp())).fit()
    return modes(model, data)["modes"]


@pytest.mark.slow  # 149 s on 2 cores (2026-12-02): a quarter of the default suite; run with -m slow
def test_unrolling_covers_more_ring_modes_than_saturating_minimax_in_a_short_run():
    """Metz et al. 2017 on ring8 (VEEGAN/PacGAN protocol): after 400 D steps the saturating minimax GAN still
    hops between one or two modes while its 5-step-unrolled version has already spread round the ring
    (benchmarks/results/modes/snapshots-ring8.png shows the same at 2000 steps).

    Measured in exactly this setting (seeds 0-2): minimax 3, 5, 2 modes; unrolled 8, 8, 8 (and on a 20k-point
    copy of the ring, seeds 0-3: minimax 2, 1, 0, 0; unrolled 7, 8, 8, 8). At 300 steps with a 64x2 MLP the gap was smaller and seed-dependent, so the
    assertion is on the mean over three fixed seeds with a margin of 2 modes, not on any single number.
    """
    seeds = (0, 1, 2)
    plain = [_ring_modes("minimax", s, 400) for s in seeds]
    unrolled = [_ring_modes("minimax", s, 400, unroll_steps=5) for s in seeds]
    print("modes after 400 steps: minimax", plain, "unrolled", unrolled)
    assert sum(unrolled) / len(seeds) >= sum(plain) / len(seeds) + 2, (plain, unrolled)
