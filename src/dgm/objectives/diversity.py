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


RESOLVED = 1e-6  # eigenpairs below this fraction of the largest eigenvalue are left out of L_s (see gdpp_terms)


def _eigh(h: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """(eigenvalues (K,), ascending; W; phi) of the smaller Gram matrix of phi = h with unit rows, in float64:
    phi phi^T (K = N, W its eigenvectors) when N <= F, else phi^T phi (K = F; the kernel's eigenvectors are
    phi W / sqrt(lambda))."""
    phi = F.normalize(h.double(), dim=1)
    lam, w = torch.linalg.eigh(phi @ phi.T if phi.shape[0] <= phi.shape[1] else phi.T @ phi)
    return lam, w, phi


def _floor(lam: Tensor, phi: Tensor) -> Tensor:
    """The smallest eigenvalue of the whole N x N kernel: lam's minimum when lam is that spectrum (N <= F), else 0
    (the N - F eigenvalues that phi^T phi leaves out)."""
    return lam.min() if phi.shape[0] <= phi.shape[1] else lam.new_zeros(())


def _vectors(lam: Tensor, w: Tensor, phi: Tensor, keep: Tensor) -> Tensor:
    """The kernel's unit eigenvectors (N, k) for the eigenpairs ``keep`` (indices into lam)."""
    if phi.shape[0] <= phi.shape[1]:
        return w[:, keep]
    return (phi @ w[:, keep]) / lam[keep].sqrt()


def kernel_eigen(h: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Eigen-decomposition of L = phi phi^T (phi: h with unit rows) as (eigenvalues (K,), ascending; eigenvectors
    (N, K), unit columns; the smallest eigenvalue of the whole N x N spectrum). K = N when N <= F, else the F
    non-zero ones (the rest are 0). Float64."""
    lam, w, phi = _eigh(h)
    return lam, _vectors(lam.clamp_min(1e-300), w, phi, torch.arange(lam.shape[0])), _floor(lam, phi)


def gdpp_terms(h_fake: Tensor, h_real: Tensor) -> Tuple[Tensor, Tensor]:
    """(L_m, L_s) of the module docstring for D's features of N fakes and N reals (N x F each), as float32.

    L_s leaves out the eigenpairs whose fake or real eigenvalue is below ``RESOLVED`` x the largest. Features of
    2-D points span few dimensions, so most of the spectrum is ~0 and its eigenvectors are not determined in
    floating point: their weight lambdahat is < 1e-6 each, but the eigen-decomposition's gradient divides by
    eigenvalue gaps and sqrt(lambda), which overflowed in a 25k-update GDPP run on ring8 (19,191 updates in).
    L_m keeps every eigenvalue (its gradient has no such division). Two exactly equal eigenvalues still make the
    gradient 0/0 (torch.linalg.eigh's is defined for distinct ones only): such a step gets no GDPP gradient."""
    if h_fake.shape != h_real.shape:
        raise ValueError(f"GDPP pairs a fake batch with a real one of the same shape, got {tuple(h_fake.shape)} and "
                         f"{tuple(h_real.shape)}")
    if h_fake.requires_grad:  # equal eigenvalues make eigh's gradient 0/0: such a step gets no GDPP gradient
        h_fake = h_fake.clone()
        h_fake.register_hook(lambda g: g if torch.isfinite(g).all() else torch.zeros_like(g))
    lam_f, w_f, phi_f = _eigh(h_fake)
    with torch.no_grad():
        lam_r, w_r, phi_r = _eigh(h_real.detach())
        low = _floor(lam_r, phi_r)
        weight = (lam_r - low) / (lam_r.max() - low).clamp_min(1e-300)
        keep = torch.nonzero((lam_r > RESOLVED * lam_r.max()) & (lam_f.detach() > RESOLVED * lam_f.detach().max()))
        keep = keep.flatten()
        vec_r = _vectors(lam_r, w_r, phi_r, keep)
    n = h_fake.shape[0]
    magnitude = ((lam_r - lam_f) ** 2).sum() / n  # the N - K zero eigenvalues on both sides add 0
    structure = -(weight[keep] * (_vectors(lam_f, w_f, phi_f, keep) * vec_r).sum(0)).sum()
    return magnitude.float(), structure.float()


def gdpp_loss(h_fake: Tensor, h_real: Tensor, eigval_weight: float = EIGVAL_WEIGHT) -> Tensor:
    """GDPP = eigval_weight * L_m + L_s (module docstring)."""
    magnitude, structure = gdpp_terms(h_fake, h_real)
    return eigval_weight * magnitude + structure
