"""GDPP (Elfeki et al. 2019): the DPP diversity loss on D's features, its cheap F x F form, and --gdpp in G's loss."""
import json

import numpy as np
import pytest
import torch

from dgm.cli import main
from dgm.errors import DgmError
from dgm.objectives.diversity import EIGVAL_WEIGHT, gdpp_loss, gdpp_terms


def _reference(h_fake, h_real):
    """The loss straight from its definition with numpy: the full N x N kernels' eigenpairs (float64); the
    eigenvector term with |<v_f, v_r>| (an eigenvector's sign is the solver's choice)."""
    def eig(h):
        phi = h / np.linalg.norm(h, axis=1, keepdims=True)
        return np.linalg.eigh(phi @ phi.T)

    lf, vf = eig(h_fake.astype(np.float64))
    lr, vr = eig(h_real.astype(np.float64))
    weight = (lr - lr.min()) / (lr.max() - lr.min())
    return np.mean((lr - lf) ** 2), -(weight * np.abs((vf * vr).sum(0))).sum()


def test_known_values_by_hand():
    """Rows e1, e1, e2: kernel [[1,1,0],[1,1,0],[0,0,1]], eigenvalues 0, 1, 2, normalised 0, 1/2, 1. Against
    itself every eigenvector matches: L_s = -(0 + 1/2 + 1) = -1.5, L_m = 0. Against rows e1, e1, e1 (eigenvalues
    0, 0, 3): L_m = (0 + 1 + 1) / 3. Both with N > F (the F x F form) and N <= F (the N x N one)."""
    real = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    for pad in (0, 2):  # F = 2 < N = 3, then F = 4 > N
        r = torch.nn.functional.pad(real, (0, pad))
        m, s = gdpp_terms(r * 3.0, r)  # row scale does not matter: rows are normalised
        assert m.item() == pytest.approx(0.0, abs=1e-6) and s.item() == pytest.approx(-1.5, abs=1e-6)
        fake = torch.nn.functional.pad(torch.tensor([[1.0, 0.0]] * 3), (0, pad))
        m, _ = gdpp_terms(fake, r)
        assert m.item() == pytest.approx(2 / 3, abs=1e-6)
    assert gdpp_loss(real, real).item() == pytest.approx(-1.5, abs=1e-6)


@pytest.mark.parametrize("n,f", [(64, 16), (12, 20)])
def test_equals_the_full_kernel_definition(n, f):
    """Both forms against the definition on the full N x N kernels (numpy, float64), for random features; the
    eigenvector term compared through |<v_f, v_r>|, the only part an eigenvector's sign can change."""
    g = torch.Generator().manual_seed(0)
    h_fake, h_real = torch.randn(n, f, generator=g, dtype=torch.float64), torch.randn(n, f, generator=g,
                                                                                     dtype=torch.float64)
    ref_m, ref_s = _reference(h_fake.numpy(), h_real.numpy())
    m, _ = gdpp_terms(h_fake, h_real)
    assert m.item() == pytest.approx(ref_m, rel=1e-6)
    # the same eigenvector term with absolute dots, from the implementation's own eigenpairs
    from dgm.objectives.diversity import kernel_eigen

    lf, vf, _ = kernel_eigen(h_fake)
    lr, vr, low = kernel_eigen(h_real)
    weight = (lr - low) / (lr.max() - low)
    assert (-(weight * (vf * vr).sum(0).abs()).sum()).item() == pytest.approx(ref_s, rel=1e-4)
    assert (vf.T @ vf).allclose(torch.eye(vf.shape[1], dtype=vf.dtype), atol=1e-4)  # unit, orthogonal columns


def test_gradient_reaches_the_fakes_only():
    g = torch.Generator().manual_seed(1)
    h_fake = torch.randn(32, 8, generator=g, requires_grad=True)
    h_real = torch.randn(32, 8, generator=g, requires_grad=True)
    loss = gdpp_loss(h_fake, h_real)
    loss.backward()
    assert h_real.grad is None and h_fake.grad is not None and torch.isfinite(h_fake.grad).all()
    assert h_fake.grad.abs().sum() > 0
    assert EIGVAL_WEIGHT == 1e-4


def _first_step_log(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["train", "gan", "--data", "ring8", "--batch-size", "64", "--hidden", "16", "--layers", "2",
                 "--steps", "1", "--log-every", "1", "--update-order", "simultaneous", "--no-progress",
                 "--n-samples", "0", "--deterministic", "--out", str(out), *extra]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return next(r for r in rows if "loss_g" in r)


def test_generator_loss_gains_the_weighted_term(tmp_path):
    """On the first step (simultaneous order: G against the initial D, the same fakes) G's logged loss with
    --gdpp w is the plain loss plus w x the logged GDPP term."""
    plain = _first_step_log(tmp_path, "plain")
    with_term = _first_step_log(tmp_path, "gdpp", "--gdpp", "2")
    assert "gdpp" not in plain and np.isfinite(with_term["gdpp"])
    assert with_term["loss_g"] == pytest.approx(plain["loss_g"] + 2 * with_term["gdpp"], rel=1e-5, abs=1e-6)


def test_refusals():
    from dgm.models.gan import GANConfig
    from dgm.models.infogan import InfoGANConfig
    from dgm.models.ssgan import SSGANConfig

    with pytest.raises(DgmError, match="--gdpp must be >= 0"):
        GANConfig(gdpp=-1.0)
    with pytest.raises(DgmError, match="needs a scoring discriminator and no --unroll-steps"):
        GANConfig(gdpp=1.0, objective="ebgan")
    with pytest.raises(DgmError, match="no --unroll-steps"):
        GANConfig(gdpp=1.0, unroll_steps=2)
    with pytest.raises(DgmError, match="--gdpp is for dgm train gan"):
        InfoGANConfig(gdpp=1.0, cat_codes=2)
    with pytest.raises(DgmError, match="--gdpp is for dgm train gan"):
        SSGANConfig(gdpp=1.0, num_classes=10)


@pytest.mark.slow  # multi-process (13-15 s); the default run keeps the engine's and the GAN's DDP checks
def test_ddp_two_processes_give_the_one_process_gradient(tmp_path):
    """Under torchrun each process gathers the whole batch's features (fakes with their gradient, reals in the
    one-process order) and computes the same loss: after one step G's Adam first moment, (1 - beta1) x its
    gradient, equals one process's. Compared with rtol 1e-3: the eigen-decomposition's gradient amplifies float
    noise (measured: 2e-4 relative), while a wrong gather (no reordering, or a gradient W times too large) moves it
    by far more. Over several steps Adam turns that noise on near-zero gradients into +-lr moves, so one step."""
    import glob
    import subprocess
    import sys

    common = ["train", "gan", "--data", "ring8", "--steps", "1", "--batch-size", "32", "--hidden", "16",
              "--no-progress", "--n-samples", "0", "--device", "cpu", "--gdpp", "1"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgm.cli"]
    ddp = subprocess.run([*cmd, *common, "--out", str(tmp_path / "ddp")], capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = (torch.load(sorted(glob.glob(str(tmp_path / r / "checkpoints" / "ckpt-*.pt")))[-1], weights_only=True)
            for r in ("ddp", "one"))
    for i, sa in a["optimizers"]["g"]["state"].items():
        sb = b["optimizers"]["g"]["state"][i]
        assert torch.allclose(sa["exp_avg"], sb["exp_avg"], rtol=1e-3, atol=1e-6), i
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-7), k


def test_features_of_points_spanning_few_dimensions_give_a_finite_gradient():
    """D's features of 2-D points lie near a low-dimensional set, so most of the kernel's spectrum is ~0: the loss
    keeps a finite gradient there (the unresolved eigenvectors are left out of L_s) and its value stays within 1e-3
    of the full definition's (their weights are below 1e-6 each)."""
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 128, generator=g) * 3, torch.randn(128, 128, generator=g) / 4

    def features(x):
        return torch.tanh(torch.tanh(x @ a) @ b)

    angles = torch.randint(8, (512,), generator=g) * (2 * np.pi / 8)
    ring = torch.stack([angles.cos(), angles.sin()], 1)
    real = features(ring + 0.01 * torch.randn(512, 2, generator=g))
    x_fake = (ring[torch.randperm(512, generator=g)] + 0.2 * torch.randn(512, 2, generator=g)).requires_grad_(True)
    h_fake = features(x_fake)
    from dgm.objectives.diversity import _eigh

    lam = _eigh(h_fake.detach())[0]
    assert (lam < 1e-6 * lam.max()).sum() > 10  # the case in point: many unresolved eigenvalues
    m, s = gdpp_terms(h_fake, real)
    (EIGVAL_WEIGHT * m + s).backward()
    assert torch.isfinite(x_fake.grad).all() and x_fake.grad.abs().sum() > 0
    ref_m, ref_s = _reference(h_fake.detach().double().numpy(), real.double().numpy())
    assert m.item() == pytest.approx(ref_m, rel=1e-4)
    # |dots| bound both: L_s's sign-free magnitude within the unresolved part's total weight
    from dgm.objectives.diversity import kernel_eigen

    lf, vf, _ = kernel_eigen(h_fake.detach())
    lr, vr, low = kernel_eigen(real)
    w = (lr - low) / (lr.max() - low)
    kept = (lr > 1e-6 * lr.max()) & (lf > 1e-6 * lf.max())
    assert w[~kept].sum().item() < 1e-3
    kept_abs = (w[kept] * (vf[:, kept] * vr[:, kept]).sum(0).abs()).sum().item()
    assert abs(s.item()) <= kept_abs + 1e-5
    assert abs(-kept_abs - ref_s) <= w[~kept].sum().item() + 1e-4  # the definition, less the unresolved terms


def test_equal_eigenvalues_give_no_gdpp_gradient_rather_than_nan():
    """Orthogonal fake features: the kernel is the identity, every eigenvalue is 1, and eigh's gradient is 0/0.
    That step's GDPP gradient is 0 (not NaN, which would end the run); the rest of G's loss is untouched."""
    h = torch.eye(4, 8).requires_grad_(True)
    real = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    (gdpp_loss(h, real) + h.sum()).backward()
    assert torch.equal(h.grad, torch.ones(4, 8))
