"""GDPP: the generative determinantal point process loss (Elfeki et al., ICML 2019), a diversity term on G.

A batch's diversity is described by the kernel L = phi phi^T over its N samples, phi the discriminator's last hidden
features with unit-norm rows. G is asked to give its fakes' kernel the eigen-structure of the real batch's:

    L_m = mean_i (lambda_real_i - lambda_fake_i)^2              (eigenvalues, ascending, over all N)
    L_s = - sum_i lambdahat_real_i * <v_fake_i, v_real_i>        (eigenvectors paired by rank)
    GDPP = w_m * L_m + L_s,   lambdahat = min-max normalised real eigenvalues (in [0, 1])

with w_m = 1e-4 in the authors' toy-mixture code (github.com/M-Elfeki/GDPP, ``gdppgan_Synthetic.py``, where G's loss
is 0.5 (GAN loss + GDPP)). The real side is a target: no gradient reaches D through this term.

Cost: with N > F features the N x N kernel has rank F; its non-zero eigenpairs come from the F x F matrix
phi^T phi (v = phi w / sqrt(lambda)), and the N - F zero eigenvalues add nothing to L_m and have weight 0 in L_s
(their lambdahat is 0 as the spectrum's minimum). So the loss costs two F x F eigen-decompositions, not N x N
(batch 512, F 128 in the toy networks). As in the authors' code, an eigenvector's sign is the one the solver
returns (``torch.linalg.eigh``); the eigenvalue term does not depend on it.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

EIGVAL_WEIGHT = 1e-4  # gdppgan_Synthetic.py: params eig_vals_loss_weight=0.0001


def kernel_eigen(h: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Eigen-decomposition of L = phi phi^T (phi: h with unit rows) as (eigenvalues (K,), ascending; eigenvectors
    (N, K), unit columns; the smallest eigenvalue of the whole N x N spectrum). K = N when N <= F, else the F non-zero
    ones (the rest are 0)."""
    phi = F.normalize(h if h.dtype == torch.float64 else h.float(), dim=1)  # eigh in float32 at least
    n, f = phi.shape
    if n <= f:
        lam, vec = torch.linalg.eigh(phi @ phi.T)
        return lam, vec, lam.min()
    lam, w = torch.linalg.eigh(phi.T @ phi)
    vec = (phi @ w) / lam.clamp_min(1e-12).sqrt()
    return lam, vec, lam.new_zeros(())


def gdpp_terms(h_fake: Tensor, h_real: Tensor) -> Tuple[Tensor, Tensor]:
    """(L_m, L_s) of the module docstring for D's features of N fakes and N reals (N x F each)."""
    if h_fake.shape != h_real.shape:
        raise ValueError(f"GDPP pairs a fake batch with a real one of the same shape, got {tuple(h_fake.shape)} and "
                         f"{tuple(h_real.shape)}")
    lam_f, vec_f, _ = kernel_eigen(h_fake)
    with torch.no_grad():
        lam_r, vec_r, low = kernel_eigen(h_real.detach())
        span = (lam_r.max() - low).clamp_min(1e-12)
        weight = (lam_r - low) / span
    n = h_fake.shape[0]
    magnitude = ((lam_r - lam_f) ** 2).sum() / n  # the N - K zero eigenvalues on both sides add 0
    structure = -(weight * (vec_f * vec_r).sum(0)).sum()
    return magnitude, structure


def gdpp_loss(h_fake: Tensor, h_real: Tensor, eigval_weight: float = EIGVAL_WEIGHT) -> Tensor:
    """GDPP = eigval_weight * L_m + L_s (module docstring)."""
    magnitude, structure = gdpp_terms(h_fake, h_real)
    return eigval_weight * magnitude + structure
