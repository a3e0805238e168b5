"""GAN objectives as pure functions of discriminator / critic outputs.

Every objective is a pair of functions, ``d(d_real, d_fake) -> loss_d`` and ``g(d_fake) -> loss_g``, both
*minimised* and both averaged over the batch. What the outputs are depends on the objective's ``kind``:

- ``logit``: D's pre-sigmoid output l, with D(x) = sigmoid(l). We never form log D from a probability:
  log D = -softplus(-l) and log(1 - D) = -softplus(l).
- ``critic``: an unbounded real score f(x) (WGAN, hinge, LSGAN, f-GAN's V(x)).
- ``energy``: a non-negative per-example energy (EBGAN: reconstruction MSE; BEGAN: reconstruction L1).

``OBJECTIVES`` registers them by name for ``dgm train gan --objective NAME``; each entry carries the
paper's optimiser defaults (learning rates, Adam betas, n_critic) so a plain run reproduces the paper.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DgmError
from ..part_options import Options, names
from ..registry import Registry
from .penalties import Penalty

# ---------------------------------------------------------------------------------------------------
# The classic family (Goodfellow et al. 2014), on logits.


def minimax(d_real: Tensor, d_fake: Tensor) -> Tuple[Tensor, Tensor]:
    """Goodfellow et al. 2014: max_D E log D(x) + E log(1 - D(G(z))); G minimises E log(1 - D(G(z)))."""
    return minimax_d(d_real, d_fake), minimax_g(d_fake)


def minimax_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # -[E log D(x) + E log(1 - D(G(z)))]
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def minimax_g(d_fake: Tensor) -> Tensor:
    # E log(1 - D(G(z))): saturates (vanishing gradient) when D rejects fakes confidently
    return -F.softplus(d_fake).mean()


def non_saturating_g(d_fake: Tensor) -> Tensor:
    """Goodfellow et al. 2014, sec. 3: G maximises E log D(G(z)) instead (same fixed point, strong early gradient)."""
    return F.softplus(-d_fake).mean()


# The encoder's side of a bidirectional game (ALI, Dumoulin et al. 2017; BiGAN, Donahue et al. 2017): D scores pairs
# (x, E(x)) as real and (G(z), z) as fake, and E, like G, plays against D -- through the real pairs. Each function
# below is the term of the generator side's loss on D's outputs of the real pairs, the mirror of the objective's g.


def minimax_e(d_real: Tensor) -> Tensor:
    # E log D(x, E(x)): with minimax_g, G and E minimise exactly minus D's loss (Dumoulin et al. 2017, eq. 1)
    return -F.softplus(-d_real).mean()


def non_saturating_e(d_real: Tensor) -> Tensor:
    """ALI / BiGAN's practical loss: E maximises E log(1 - D(x, E(x))), the real pairs labelled fake."""
    return F.softplus(d_real).mean()


def label_smoothing_d(d_real: Tensor, d_fake: Tensor, alpha: float = 0.9, beta: float = 0.0) -> Tensor:
    """Salimans et al. 2016: targets alpha for reals and beta for fakes (one-sided: beta = 0).

    The optimal discriminator becomes D*(x) = (alpha p(x) + beta q(x)) / (p(x) + q(x)).
    """
    return (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, alpha))
            + F.binary_cross_entropy_with_logits(d_fake, torch.full_like(d_fake, beta)))


# ---------------------------------------------------------------------------------------------------
# Critics with unbounded outputs.


def lsgan_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Mao et al. 2017 (0-1 coding, the seed's table): L_D = E (D(x) - 1)^2 + E D(G(z))^2."""
    return ((d_real - 1) ** 2).mean() + (d_fake ** 2).mean()


def lsgan_g(d_fake: Tensor) -> Tensor:
    """Mao et al. 2017: L_G = E (D(G(z)) - 1)^2."""
    return ((d_fake - 1) ** 2).mean()


def lsgan_e(d_real: Tensor) -> Tensor:
    """The encoder's least-squares term: the real pairs toward the fake target 0, E D(x, E(x))^2."""
    return (d_real ** 2).mean()


def wasserstein_d(d_real: Tensor, d_fake: Tensor, drift: float = 0.0) -> Tensor:
    """Arjovsky et al. 2017: the critic maximises E f(x) - E f(G(z)) (its negative is minimised). ``drift``: Karras et
    al. 2018 (ProGAN, A.1) add drift x E f(x)^2, which keeps the critic's output near 0 (epsilon_drift = 0.001)."""
    loss = d_fake.mean() - d_real.mean()
    return loss + drift * d_real.pow(2).mean() if drift else loss


def wasserstein_g(d_fake: Tensor) -> Tensor:
    """Arjovsky et al. 2017: G maximises E f(G(z))."""
    return -d_fake.mean()


def hinge_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Lim & Ye 2017 / Miyato et al. 2018: E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))."""
    return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()


def hinge_g(d_fake: Tensor) -> Tensor:
    """Hinge GAN generator: -E D(G(z))."""
    return -d_fake.mean()


def critic_e(d_real: Tensor) -> Tensor:
    """The encoder's term of a critic game (hinge, Wasserstein): E D(x, E(x)), the mirror of -E D(G(z))."""
    return d_real.mean()


# ---------------------------------------------------------------------------------------------------
# Energy-based: the discriminator is an auto-encoder and its output is a reconstruction energy.


def ebgan_d(e_real: Tensor, e_fake: Tensor, margin: float = 1.0) -> Tensor:
    """Zhao et al. 2017: L_D = D(x) + (m - D(G(z)))_+ with energies D >= 0 and margin m > 0."""
    return e_real.mean() + F.relu(margin - e_fake).mean()


def ebgan_g(e_fake: Tensor) -> Tensor:
    """Zhao et al. 2017: L_G = D(G(z)) (plus the pulling-away term, see ``pulling_away``)."""
    return e_fake.mean()


def pulling_away(h: Tensor) -> Tensor:
    """Zhao et al. 2017 repelling regulariser: R = 2 / (M(M-1)) sum_{i<j} cos(h_i, h_j)^2 over a batch of features.

    Adding lambda * R to the generator loss pushes the batch's representations apart (less mode collapse).
    """
    h = h.flatten(1)
    m = h.shape[0]
    if m < 2:
        return h.new_zeros(())
    u = F.normalize(h, dim=1)
    cos2 = (u @ u.t()) ** 2
    off = cos2.sum() - cos2.diagonal().sum()  # = 2 sum_{i<j} cos^2
    return off / (m * (m - 1))


def began_d(l_real: Tensor, l_fake: Tensor, k: float) -> Tensor:
    """Berthelot et al. 2017: L_D = L(x) - k_t L(G(z)), L the auto-encoder's reconstruction loss."""
    return l_real.mean() - k * l_fake.mean()


def began_g(l_fake: Tensor) -> Tensor:
    """Berthelot et al. 2017: L_G = L(G(z))."""
    return l_fake.mean()


def began_update(k: float, l_real: float, l_fake: float, gamma: float = 0.5, lambda_k: float = 0.001
                 ) -> Tuple[float, float]:
    """Berthelot et al. 2017: k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1); returns (k_{t+1}, M_global).

    M_global = L(x) + |gamma L(x) - L(G(z))| is the paper's convergence measure.
    """
    balance = gamma * l_real - l_fake
    return min(max(k + lambda_k * balance, 0.0), 1.0), l_real + abs(balance)


# ---------------------------------------------------------------------------------------------------
# f-GAN (Nowozin et al. 2016): D_f(P||Q) >= sup_T E_P T(x) - E_Q f*(T(x)), with T = g_f(V(x)).


@dataclass(frozen=True)
class FDivergence:
    """One f-divergence: the generator f, its Fenchel conjugate f*, the output activation g_f and f*(g_f(v)).

    ``conj_act`` is f*(g_f(v)) written in a numerically stable closed form.
    """

    name: str
    f: Callable[[Tensor], Tensor]
    conjugate: Callable[[Tensor], Tensor]
    activation: Callable[[Tensor], Tensor]
    conj_act: Callable[[Tensor], Tensor]


_LOG2 = math.log(2.0)

F_DIVERGENCES: Dict[str, FDivergence] = {d.name: d for d in [
    # KL: f(u) = u log u; f*(t) = exp(t - 1); g_f(v) = v
    FDivergence("kl", lambda u: u * torch.log(u), lambda t: torch.exp(t - 1), lambda v: v,
                lambda v: torch.exp(v - 1)),
    # reverse KL: f(u) = -log u; f*(t) = -1 - log(-t); g_f(v) = -exp(-v)  =>  f*(g_f(v)) = v - 1
    FDivergence("reverse-kl", lambda u: -torch.log(u), lambda t: -1 - torch.log(-t), lambda v: -torch.exp(-v),
                lambda v: v - 1),
    # Jensen-Shannon: f(u) = u log u - (u + 1) log((u + 1) / 2); f*(t) = -log(2 - e^t); g_f(v) = log 2 - log(1 + e^-v)
    #   => f*(g_f(v)) = -log(2 - 2 sigmoid(v)) = softplus(v) - log 2
    FDivergence("js", lambda u: u * torch.log(u) - (u + 1) * torch.log((u + 1) / 2),
                lambda t: -torch.log(2 - torch.exp(t)), lambda v: _LOG2 - F.softplus(-v),
                lambda v: F.softplus(v) - _LOG2),
    # Pearson chi^2: f(u) = (u - 1)^2; f*(t) = t^2 / 4 + t; g_f(v) = v
    FDivergence("pearson", lambda u: (u - 1) ** 2, lambda t: t ** 2 / 4 + t, lambda v: v,
                lambda v: v ** 2 / 4 + v),
    # squared Hellinger: f(u) = (sqrt(u) - 1)^2; f*(t) = t / (1 - t); g_f(v) = 1 - exp(-v)  =>  f*(g_f(v)) = e^v - 1
    FDivergence("hellinger", lambda u: (torch.sqrt(u) - 1) ** 2, lambda t: t / (1 - t),
                lambda v: 1 - torch.exp(-v), lambda v: torch.expm1(v)),
]}


def f_divergence(name: str) -> FDivergence:
    if name not in F_DIVERGENCES:
        raise DgmError(f"unknown f-divergence {name!r}; choose one of: {', '.join(F_DIVERGENCES)}")
    return F_DIVERGENCES[name]


def fgan_d(v_real: Tensor, v_fake: Tensor, divergence: str = "js") -> Tensor:
    """Nowozin et al. 2016: T maximises E_P g_f(V(x)) - E_Q f*(g_f(V(G(z)))) (the divergence's lower bound)."""
    d = f_divergence(divergence)
    return -(d.activation(v_real).mean() - d.conj_act(v_fake).mean())


def fgan_g(v_fake: Tensor, divergence: str = "js") -> Tensor:
    """Nowozin et al. 2016, sec. 3.2: G maximises E_Q g_f(V(G(z))) (their practical, non-saturating choice)."""
    return -f_divergence(divergence).activation(v_fake).mean()


def fgan_bound(v_real: Tensor, v_fake: Tensor, divergence: str = "js") -> Tensor:
    """The variational lower bound E_P T - E_Q f*(T) on D_f(P || Q) that the critic maximises."""
    return -fgan_d(v_real, v_fake, divergence)


# ---------------------------------------------------------------------------------------------------
# The registry: what ``dgm train gan --objective NAME`` selects.


def _no_term(code: Optional[Tensor], config) -> Optional[Tensor]:
    return None


def _no_logs(d_real: Tensor, d_fake: Tensor, state: Dict[str, float], config, all_mean) -> Dict[str, Tensor]:
    return {}


@dataclass(frozen=True)
class Objective:
    """An objective by name: its two losses, what D outputs, the paper's optimiser defaults, and its extras.

    The GAN step only calls the methods ``init_state``, ``d_loss``, ``g_loss``, ``after_d`` and ``penalties``;
    what is particular to one objective is declared here (hooks default to no-ops), never tested by name.
    """

    name: str
    d: Callable[..., Tensor]           # (d_real, d_fake, **options, **state) -> loss_d
    g: Callable[..., Tensor]           # (d_fake, **options) -> loss_g
    kind: str = "logit"                # logit | critic | energy
    penalty: Optional[str] = None      # None | "interpolates" (WGAN-GP) | "perturbed" (DRAGAN): a GP's points
    clip: bool = False                 # WGAN weight clipping after each critic update
    lr_d: float = 2e-4                 # DCGAN (Radford et al. 2016): Adam 2e-4, betas (0.5, 0.999)
    lr_g: float = 2e-4
    betas: Tuple[float, float] = (0.5, 0.999)
    optimizer: str = "adam"
    n_critic: int = 1
    d_options: Tuple[Tuple[str, str], ...] = ()  # (keyword of d, option name) pairs, e.g. ("margin", "margin")
    g_options: Tuple[Tuple[str, str], ...] = ()
    reference: str = ""
    Options: type = Options            # its options (flags), a dataclass declared beside its registration below
    reconstruction: str = ""           # energy kind: the auto-encoder D's loss, "mse" (EBGAN) or "l1" (BEGAN)
    state: Tuple[Tuple[str, float], ...] = ()  # training state (checkpointed), passed to d by keyword: BEGAN's k_t
    g_extra: Callable[..., Optional[Tensor]] = _no_term  # (D's code of the fakes or None, config) -> added to loss_g
    after_d: Callable[..., Dict[str, Tensor]] = _no_logs  # (d_real, d_fake, state, config, all_mean) -> logs; may
    #                                                       update state. all_mean averages a tensor over processes.
    e: Optional[Callable[[Tensor], Tensor]] = None  # (d_real) -> the encoder's loss in a bidirectional game (ALI,
    #                                                 BiGAN): the generator side's term on D's outputs of real pairs
    boundary: float = 0.0              # D's output between "real" and "fake" (its accuracy's threshold): 0 for
    #                                    logits and symmetric critics, 0.5 for LSGAN's 0-1 targets
    targets: Optional[Callable[..., Tuple[float, float]]] = None  # (config) -> D's (real, fake) targets, for an
    #                                    objective whose D loss is a per-example loss against them (None: no targets)
    target_loss: Optional[Callable[[Tensor, Tensor], Tensor]] = None  # (outputs, targets) -> per-example loss

    @property
    def options(self) -> Tuple[str, ...]:
        """The names of this objective's options (its flags: ``gp_weight`` is ``--gp-weight``)."""
        return names(self.Options)

    def beyond_a_score(self) -> Optional[str]:
        """What this objective needs beyond a discriminator that scores each example, updated once per generator
        update (an auto-encoder D, a gradient penalty, weight clipping with several critic updates, options of the
        gan model); None when it needs nothing more. Models whose discriminators are only scores (CycleGAN's
        PatchGANs, ALI's joint D) offer the objectives for which this is None."""
        if self.kind == "energy":
            return "an auto-encoder discriminator (energy-based)"
        if self.penalty:
            return f"a gradient penalty of D's input ({self.penalty} points)"
        if self.clip or self.n_critic != 1:
            return f"weight clipping and {self.n_critic} critic updates per generator update"
        if self.options:
            return f"options of the gan model ({', '.join('--' + o.replace('_', '-') for o in self.options)})"
        return None

    def losses(self, d_real: Tensor, d_fake: Tensor, **options) -> Tuple[Tensor, Tensor]:
        """(loss_d, loss_g) for these discriminator outputs; ``options`` by keyword (e.g. margin=1.0)."""
        kd = {k: options[k] for k, _ in self.d_options if k in options}
        kg = {k: options[k] for k, _ in self.g_options if k in options}
        return self.d(d_real, d_fake, **kd), self.g(d_fake, **kg)

    def d_kwargs(self, config) -> Dict:
        return {k: getattr(config, f) for k, f in self.d_options}

    def g_kwargs(self, config) -> Dict:
        return {k: getattr(config, f) for k, f in self.g_options}

    def init_state(self) -> Dict[str, float]:
        """A fresh copy of this objective's training state ({} for most)."""
        return dict(self.state)

    def d_loss(self, d_real: Tensor, d_fake: Tensor, state: Dict[str, float], config) -> Tensor:
        """D's loss with the config's options and the current state."""
        return self.d(d_real, d_fake, **self.d_kwargs(config), **state)

    def g_loss(self, d_fake: Tensor, code: Optional[Tensor], config) -> Tensor:
        """G's loss, plus the objective's extra term on D's code of the fakes (EBGAN's pulling-away term)."""
        loss = self.g(d_fake, **self.g_kwargs(config))
        extra = self.g_extra(code, config)
        return loss if extra is None else loss + extra

    def d_loss_flipped(self, d_real: Tensor, d_fake: Tensor, flip_real: Tensor, flip_fake: Tensor, config) -> Tensor:
        """D's loss with the targets of the examples marked in ``flip_real`` / ``flip_fake`` (bool, one per output)
        swapped, real <-> fake (label flipping); with no flip it is ``d_loss`` (an objective with ``targets``)."""
        t_real, t_fake = self.targets(config)
        real_to = torch.where(flip_real, t_fake, t_real).to(d_real.dtype)
        fake_to = torch.where(flip_fake, t_real, t_fake).to(d_fake.dtype)
        return self.target_loss(d_real, real_to).mean() + self.target_loss(d_fake, fake_to).mean()

    def penalties(self, config) -> List[Penalty]:
        """This objective's gradient penalty of D (target 1, weight --gp-weight), if it has one (R1, which any scoring
        D may add, is a regulariser: ``models/gan_regularisers/r1.py``)."""
        if self.penalty is None:
            return []
        return [Penalty(self.penalty, target=1.0, weight=config.gp_weight, scale=config.dragan_c)]


# ---------------------------------------------------------------------------------------------------
# Per-objective extras, called through the hooks above.


def _bce(d: Tensor, target: Tensor) -> Tensor:
    """-[t log D + (1 - t) log(1 - D)] per example, on logits (the classic family's D loss against targets t)."""
    return F.binary_cross_entropy_with_logits(d, target, reduction="none")


def _squared(d: Tensor, target: Tensor) -> Tensor:
    """(D - t)^2 per example (LSGAN's D loss against its 0-1 targets)."""
    return (d - target) ** 2


def _one_zero(config) -> Tuple[float, float]:
    return 1.0, 0.0


def _smoothed(config) -> Tuple[float, float]:
    return config.smooth_alpha, config.smooth_beta


def _pulling_away_term(code: Optional[Tensor], config) -> Optional[Tensor]:
    """EBGAN: --pt-weight x PT on the encoder's codes of the generated batch (not in unrolled copies: no code)."""
    if config.pt_weight and code is not None:
        return config.pt_weight * pulling_away(code)
    return None


def _began_after_d(d_real: Tensor, d_fake: Tensor, state: Dict[str, float], config, all_mean) -> Dict[str, Tensor]:
    """BEGAN: advance k_t from the batch (all processes') mean losses; log k_t and the convergence measure."""
    l_real, l_fake = all_mean(torch.stack([d_real.mean(), d_fake.mean()]).detach())
    state["k"], conv = began_update(state["k"], float(l_real), float(l_fake), config.gamma, config.lambda_k)
    return {"k": torch.tensor(state["k"]), "convergence": torch.tensor(conv)}


def _wasserstein_estimate(d_real: Tensor, d_fake: Tensor, state, config, all_mean) -> Dict[str, Tensor]:
    """WGAN: the critic's estimate E f(x) - E f(G(z)) of W1 (this process's batch)."""
    return {"wasserstein_estimate": (d_real.mean() - d_fake.mean()).detach()}


def _fgan_after_d(d_real: Tensor, d_fake: Tensor, state, config, all_mean) -> Dict[str, Tensor]:
    """f-GAN: the critic's current lower bound on D_f(P || Q)."""
    return {"divergence_bound": fgan_bound(d_real.detach(), d_fake.detach(), config.divergence)}


OBJECTIVES: Registry = Registry("objective")


# Each objective's options (its flags, shown by `dgm train gan --objective NAME --help`), beside its registration.
@dataclass
class LabelSmoothingOptions(Options):
    smooth_alpha: float = 0.9         # label smoothing targets (Salimans et al. 2016)
    smooth_beta: float = 0.0          # label smoothing target of fake images (0: none)


@dataclass
class WGANOptions(Options):
    positive = ("clip_value",)
    clip_value: float = 0.01          # WGAN weight clipping c


@dataclass
class WGANGPOptions(Options):
    non_negative = ("gp_weight", "drift")
    gp_weight: float = 10.0           # lambda of WGAN-GP / DRAGAN
    drift: float = 0.0                # + drift x E D(x)^2 on the critic's loss (ProGAN's epsilon_drift 0.001)


@dataclass
class DRAGANOptions(Options):
    non_negative = ("gp_weight",)
    positive = ("dragan_c",)
    gp_weight: float = 10.0           # lambda of WGAN-GP / DRAGAN
    dragan_c: float = 0.5             # DRAGAN perturbation scale c (x_p = x + c std(x) U[0,1])


@dataclass
class EBGANOptions(Options):
    non_negative = ("pt_weight",)
    positive = ("margin",)
    margin: float = 1.0               # EBGAN margin m (energy = mean squared reconstruction error)
    pt_weight: float = 0.1            # EBGAN pulling-away term weight (0 disables)


@dataclass
class BEGANOptions(Options):
    non_negative = ("lambda_k",)
    gamma: float = 0.5                # BEGAN diversity ratio
    lambda_k: float = 0.001           # BEGAN k_t learning rate

    def check(self, config) -> None:
        if not 0 < self.gamma <= 1:
            raise DgmError(f"--gamma must be in (0, 1], got {self.gamma}")


@dataclass
class FGANOptions(Options):
    divergence: str = "js"            # f-GAN: kl | reverse-kl | js | pearson | hellinger

    def check(self, config) -> None:
        if self.divergence not in F_DIVERGENCES:
            raise DgmError(f"--divergence must be one of {', '.join(F_DIVERGENCES)}, got {self.divergence!r}")


def _add(obj: Objective, help: str) -> None:
    flags = " ".join("--" + o.replace("_", "-") for o in obj.options)
    OBJECTIVES.add(obj.name, obj, help + (f" [flags: {flags}]" if flags else ""))


_LOGIT_TARGETS = dict(targets=_one_zero, target_loss=_bce)
_add(Objective("minimax", minimax_d, minimax_g, e=minimax_e, reference="Goodfellow et al. 2014", **_LOGIT_TARGETS),
     "saturating minimax: G minimises E log(1 - D(G(z)))")
_add(Objective("non-saturating", minimax_d, non_saturating_g, e=non_saturating_e, reference="Goodfellow et al. 2014",
               **_LOGIT_TARGETS),
     "non-saturating: G maximises E log D(G(z))")
_add(Objective("label-smoothing", label_smoothing_d, non_saturating_g, d_options=(("alpha", "smooth_alpha"), ("beta", "smooth_beta")),
               Options=LabelSmoothingOptions, reference="Salimans et al. 2016", targets=_smoothed, target_loss=_bce),
     "non-saturating GAN with one-sided label smoothing (targets alpha=0.9 / beta=0)")
_add(Objective("lsgan", lsgan_d, lsgan_g, kind="critic", e=lsgan_e, boundary=0.5, reference="Mao et al. 2017",
               targets=_one_zero, target_loss=_squared),
     "least squares: E(D(x)-1)^2 + E D(G(z))^2; G: E(D(G(z))-1)^2")
_add(Objective("wgan", wasserstein_d, wasserstein_g, kind="critic", clip=True, lr_d=5e-5, lr_g=5e-5,
               optimizer="rmsprop", n_critic=5, Options=WGANOptions, after_d=_wasserstein_estimate,
               reference="Arjovsky et al. 2017"),
     "Wasserstein GAN with weight clipping (c=0.01, RMSprop 5e-5, n_critic=5)")
_add(Objective("wgan-gp", wasserstein_d, wasserstein_g, kind="critic", penalty="interpolates", lr_d=1e-4, lr_g=1e-4,
               betas=(0.0, 0.9), n_critic=5, Options=WGANGPOptions, after_d=_wasserstein_estimate,
               d_options=(("drift", "drift"),), reference="Gulrajani et al. 2017"),
     "WGAN with gradient penalty on interpolates (lambda=10, Adam 1e-4 (0, 0.9), n_critic=5)")
_add(Objective("dragan", minimax_d, non_saturating_g, penalty="perturbed", Options=DRAGANOptions,
               reference="Kodali et al. 2017", **_LOGIT_TARGETS),
     "non-saturating GAN + gradient penalty around perturbed real points (lambda=10)")
_add(Objective("hinge", hinge_d, hinge_g, kind="critic", e=critic_e, lr_d=4e-4, lr_g=1e-4, betas=(0.0, 0.9),
               reference="Lim & Ye 2017; Zhang et al. 2019 (TTUR 4e-4 / 1e-4)"),
     "hinge loss (SAGAN): E relu(1-D(x)) + E relu(1+D(G(z))); G: -E D(G(z))")
_add(Objective("ebgan", ebgan_d, ebgan_g, kind="energy", reconstruction="mse", d_options=(("margin", "margin"),),
               Options=EBGANOptions, g_extra=_pulling_away_term, reference="Zhao et al. 2017"),
     "energy-based GAN: auto-encoder D, margin m, pulling-away term (--pt-weight)")
_add(Objective("began", began_d, began_g, kind="energy", reconstruction="l1", lr_d=1e-4, lr_g=1e-4,
               Options=BEGANOptions, state=(("k", 0.0),), after_d=_began_after_d,
               reference="Berthelot et al. 2017"),
     "boundary equilibrium GAN: auto-encoder D, k_t control (gamma, lambda_k), convergence measure")
_add(Objective("f-gan", fgan_d, fgan_g, kind="critic", d_options=(("divergence", "divergence"),),
               g_options=(("divergence", "divergence"),), Options=FGANOptions, after_d=_fgan_after_d,
               reference="Nowozin et al. 2016"),
     "f-GAN through Fenchel conjugates: --divergence kl|reverse-kl|js|pearson|hellinger")
