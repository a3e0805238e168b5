"""GANs: a generator G(z) and a discriminator / critic D(x) -- MLPs for 2-D points, DCGAN for images.

The model holds the two networks and its config; the networks come from the architecture registry
``gan_nets.GAN_ARCHS``, the losses from ``dgm.objectives``, and the alternating updates (n_critic, unrolling,
TTUR, penalties) live in ``dgm.training.gan_step``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from ..errors import DgmError
from ..nn import SelfAttention, apply_spectral_norm
from ..nn.blocks import evaluating
from ..nn.ema import ema_copy
from ..nn.latent import TRUNCATIONS, gaussian_latent
from ..objectives import F_DIVERGENCES, OBJECTIVES
from .base import MODELS, ImageModel, ModelConfig
from .gan_nets import GAN_ARCHS, AutoencoderDiscriminator, Discriminator  # noqa: F401  (D types, re-exported)
from .gan_nets.base import CONDS

NORMS = ("auto", "batch", "layer", "none")
# How D's and G's gradients are taken in one training step. alternating (dgm's default, the common PyTorch loop):
# D steps, then G's loss is taken against the updated D. simultaneous: G's gradient is taken against D as it was
# before this step's D update, so both gradients come from the same parameters, as in the toy-mixture papers' code
# (GDPP: sess.run([g_train_op, d_train_op]); PacGAN/ALI: one Blocks GradientDescent over both losses).
UPDATE_ORDERS = ("alternating", "simultaneous")


@dataclass
class GANConfig(ModelConfig):
    objective: str = "auto"           # the GAN loss (dgm list objectives; auto: hinge (sagan, biggan), non-saturating)
    arch: str = "auto"                # dgm list archs (auto: mlp for 2-D points, dcgan for images)
    latent_dim: int = 0               # 0: 2 for points (PacGAN), 64 for images
    hidden: int = 0                   # 0: 256 units (mlp), 32 base channels (dcgan)
    layers: int = 3                   # hidden layers of each MLP
    d_norm: str = "auto"              # auto | batch | layer | none (auto: batch in DCGAN, none with penalties/SN/MLP)
    spectral_norm: Optional[bool] = None  # spectral norm of each D layer (Miyato 2018; none: on for sagan/biggan only)
    n_critic: int = 0                 # D updates per G update (0: the objective's paper default)
    lr_g: Optional[float] = None      # TTUR: separate learning rates (default: --lr, else the paper's)
    lr_d: Optional[float] = None      # (see --lr-g) the discriminator's learning rate
    ema_decay: float = 0.0            # EMA of G's weights sampled by default (e.g. 0.999; 0: off; dgm.nn.ema)
    ema_start: int = 0                # the EMA copies G until this training step, then averages
    gp_weight: float = 10.0           # lambda of WGAN-GP / DRAGAN
    dragan_c: float = 0.5             # DRAGAN perturbation scale c (x_p = x + c std(x) U[0,1])
    clip_value: float = 0.01          # WGAN weight clipping c
    smooth_alpha: float = 0.9         # label smoothing targets (Salimans et al. 2016)
    smooth_beta: float = 0.0          # label smoothing target of fake images (0: none)
    margin: float = 1.0               # EBGAN margin m (energy = mean squared reconstruction error)
    pt_weight: float = 0.1            # EBGAN pulling-away term weight (0 disables)
    gamma: float = 0.5                # BEGAN diversity ratio
    lambda_k: float = 0.001           # BEGAN k_t learning rate
    divergence: str = "js"            # f-GAN: kl | reverse-kl | js | pearson | hellinger
    unroll_steps: int = 0             # unrolled GAN (Metz et al. 2017): K differentiable D updates
    instance_noise: float = 0.0       # std of Gaussian instance noise on D's inputs, annealed to 0
    noise_decay_steps: int = 0        # 0: anneal over the whole run
    pack: int = 1                     # PacGAN (Lin et al. 2018): D scores packs of m samples; --batch-size = m x packs
    minibatch_disc: int = 0           # minibatch discrimination (Salimans et al. 2016): number of kernels B (0: off)
    minibatch_disc_dim: int = 5       # dimension C of each minibatch-discrimination kernel
    mbstd: bool = False               # minibatch standard deviation feature (Karras et al. 2018, ProGAN)
    mbstd_group: int = 4              # group size of --mbstd (ProGAN: 4)
    update_order: str = "alternating"  # alternating: G against the updated D | simultaneous: both from one evaluation
    gdpp: float = 0.0                 # GDPP (Elfeki et al. 2019): weight of the DPP diversity loss on G, over D's features
    protocol: str = ""                # toy-mixture preset veegan | pacgan (dgm.bench.protocols): fills defaults
    # R1 (any scoring D) and StyleGAN (--arch stylegan, Karras et al. 2019)
    r1: Optional[float] = None        # R1 gamma/2 E||grad D(x)||^2 on reals (Mescheder 2018); none: 0, stylegan 10
    r1_every: int = 1                 # lazy R1 (StyleGAN2): on every K-th D update only, with weight gamma/2 x K
    mapping_layers: int = 8           # stylegan: layers of the mapping network z -> w (0: w = the normalised z)
    const_input: bool = True          # stylegan: learned constant input (--no-const-input: a linear layer of w)
    noise: bool = True                # stylegan: per-layer noise inputs with learned per-channel scales
    modulation: str = "adain"         # stylegan: adain | demod (StyleGAN2 weight demodulation) | none (no styles)
    style_mix_prob: float = 0.9       # stylegan: share of fakes mixing two w's at a random crossover layer
    truncation_cutoff: int = 0        # stylegan: sample --truncation moves w on layers < this only (0: all layers)
    d_residual: bool = True           # stylegan: residual D blocks (StyleGAN2; --no-d-residual: the plain ProGAN D)
    # class-conditional GANs (issue 16): CGAN concat, projection discriminator, ACGAN
    conditional: bool = False         # class-conditional on the dataset's labels (needs a labelled dataset)
    cond: str = "projection"          # --conditional: concat (CGAN) | projection (Miyato & Koyama 2018) | ac (ACGAN)
    ac_weight: float = 1.0            # --cond ac: weight of the class loss (Odena et al. 2017)

    # ProGAN (Karras et al. 2018): --arch progan's switches (Table 1 rows) and the drift term of its WGAN-GP loss
    phase_images: int = 60000         # (progan) images shown per fade-in and per stabilisation of each resolution
    growing: bool = True              # (progan) progressive growing from 4x4 (--no-growing: the data size throughout)
    eqlr: bool = True                 # (progan) equalized learning rate (--no-eqlr: plain layers with He's init)
    pixelnorm: bool = True            # (progan) pixelwise feature normalisation after each conv of G
    drift: float = 0.0                # (wgan-gp) + drift x E D(x)^2 on the critic's loss (ProGAN's epsilon_drift 0.001)
    # SAGAN / BigGAN (issue 17; gan_nets/sagan.py, biggan.py)
    attn_res: int = 16                # sagan/biggan: self-attention at the largest feature map <= this size (0: none)
    ortho_reg: Optional[float] = None  # orthogonal reg. beta of G (Brock et al. 2019; none: 1e-4 biggan, else 0)
    skip_z: bool = True               # biggan: hierarchical latents, a chunk of z per G block (off: z at the input)
    shared_embed: bool = True         # biggan, conditional: one class embedding for all G blocks (off: one each)

    @classmethod
    def refuse_unused(cls, given: Dict[str, Any]) -> None:
        """An objective's option (e.g. --gp-weight) given to another objective is refused: each objective declares
        the config fields it reads (``Objective.options``), so nothing is silently ignored."""
        name = given.get("objective", cls.objective)
        if name == "auto":
            arch = given.get("arch", cls.arch)
            name = GAN_ARCHS.get(arch).defaults.get("objective", "non-saturating") \
                if arch in GAN_ARCHS.names() else "non-saturating"
        if name not in OBJECTIVES.names():
            return  # an unknown objective: __post_init__ says so with the nearest name
        knobs = {o for n in OBJECTIVES.names() for o in OBJECTIVES.get(n).options}
        own = OBJECTIVES.get(name).options
        unused = [k for k in given if k in knobs and k not in own]
        if unused:
            flags = " ".join("--" + o.replace("_", "-") for o in unused)
            its = " ".join("--" + o.replace("_", "-") for o in own) or "none"
            raise DgmError(f"{flags}: not used by objective {name} (its options: {its}); drop it or choose an "
                           "objective that reads it (dgm list objectives)")
        arch = given.get("arch", cls.arch)
        if arch in GAN_ARCHS.names() or arch == "auto":
            own = GAN_ARCHS.get(arch).options if arch != "auto" else ()
            for other in GAN_ARCHS.names():
                unused = [k for k in GAN_ARCHS.get(other).options if k in given and k not in own]
                if unused:
                    flags = " ".join("--" + o.replace("_", "-") for o in unused)
                    raise DgmError(f"{flags}: an option of --arch {other}, not used by --arch {arch}; drop it or "
                                   f"choose --arch {other}")
        for sub in ("cond", "ac_weight"):
            if sub in given and not given.get("conditional"):
                raise DgmError(f"--{sub.replace('_', '-')} sets how a class-conditional GAN uses its labels; give "
                               "--conditional too, or drop it")
        if "ac_weight" in given and given.get("cond", cls.cond) != "ac":
            raise DgmError("--ac-weight is the weight of ACGAN's class loss: give --cond ac, or drop it")
        for sub, main in (("minibatch_disc_dim", "minibatch_disc"), ("mbstd_group", "mbstd")):
            if sub in given and not given.get(main):
                raise DgmError(f"--{sub.replace('_', '-')} sets an option of --{main.replace('_', '-')}, which is off;"
                               f" give --{main.replace('_', '-')} too, or drop it")

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "hidden": 8, "layers": 2, "latent_dim": 4}

    def refuse_gan_step_options(self, model: str) -> None:
        """Options that only ``dgm train gan``'s step implements, refused by the GAN models with a step of their own
        (infogan, ssgan) rather than ignored."""
        if self.update_order != "alternating":
            raise DgmError(f"--update-order simultaneous is for dgm train gan; {model} updates alternately: drop it")
        if self.gdpp:
            raise DgmError(f"--gdpp is for dgm train gan; {model}'s generator loss has no GDPP term: drop it")

    def __post_init__(self):
        points = self.data_kind == "points"
        if self.arch == "auto":
            self.arch = "mlp" if points else "dcgan"
        arch = GAN_ARCHS.get(self.arch)
        r1_given = self.r1 is not None
        for name, value in arch.defaults.items():  # the architecture's paper values, where the user gave none
            if getattr(self, name) in (None, "auto"):
                setattr(self, name, value)
        self.objective = "non-saturating" if self.objective == "auto" else self.objective
        self.spectral_norm = bool(self.spectral_norm)
        self.ortho_reg = 0.0 if self.ortho_reg is None else self.ortho_reg
        obj = OBJECTIVES.get(self.objective)  # unknown name -> one-line error with the nearest name
        self.r1 = 0.0 if self.r1 is None else float(self.r1)
        if self.r1 and not r1_given and (obj.kind == "energy" or obj.penalty):
            self.r1 = 0.0  # an architecture's R1 default yields to the objective's own penalty / an auto-encoder D
        if self.r1 < 0 or (self.r1 and obj.kind == "energy"):
            raise DgmError(f"--r1 must be >= 0 and needs a scoring discriminator ({self.objective} has an auto-encoder "
                           f"D), got {self.r1}")
        if self.r1_every < 1 or (self.r1_every != 1 and not self.r1):
            raise DgmError(f"--r1-every must be >= 1 and needs --r1 GAMMA > 0, got {self.r1_every}")
        if self.d_norm not in NORMS:
            raise DgmError(f"--d-norm must be one of {', '.join(NORMS)}, got {self.d_norm!r}")
        if self.update_order not in UPDATE_ORDERS:
            raise DgmError(f"--update-order must be one of {', '.join(UPDATE_ORDERS)}, got {self.update_order!r}")
        if self.divergence not in F_DIVERGENCES:
            raise DgmError(f"--divergence must be one of {', '.join(F_DIVERGENCES)}, got {self.divergence!r}")
        for name in ("n_critic", "unroll_steps", "latent_dim", "hidden", "noise_decay_steps", "minibatch_disc"):
            if getattr(self, name) < 0:
                raise DgmError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("layers", "pack", "minibatch_disc_dim", "mbstd_group"):
            if getattr(self, name) < 1:
                raise DgmError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.gdpp >= 0:
            raise DgmError(f"--gdpp must be >= 0 (0: off), got {self.gdpp}")
        if self.gdpp and (obj.kind == "energy" or self.unroll_steps):
            raise DgmError("--gdpp compares D's features of fakes and reals in G's loss: it needs a scoring "
                           f"discriminator and no --unroll-steps ({self.objective}, {self.unroll_steps} unrolling "
                           "steps here); drop one of them")
        if obj.kind == "energy" and (self.minibatch_disc or self.mbstd):
            raise DgmError(f"--minibatch-disc / --mbstd need a scoring discriminator; {self.objective} has an "
                           "auto-encoder D: drop the option or choose another objective")
        for name in ("lr_g", "lr_d"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise DgmError(f"--{name.replace('_', '-')} must be > 0, got {v}")
        if self.ortho_reg < 0 or self.attn_res < 0:
            raise DgmError(f"--ortho-reg and --attn-res must be >= 0, got {self.ortho_reg} and {self.attn_res}")
        if not 0 < self.gamma <= 1:
            raise DgmError(f"--gamma must be in (0, 1], got {self.gamma}")
        if self.data_kind not in arch.data_kinds:
            kinds = {"points": "2-D point datasets", "images": "image data"}
            raise DgmError(f"--arch {self.arch} needs {' or '.join(kinds[k] for k in arch.data_kinds)}; "
                           f"use --arch mlp for {kinds[self.data_kind]}")
        if not 0 <= self.ema_decay < 1:
            raise DgmError(f"--ema-decay must be in [0, 1) (0: no EMA), got {self.ema_decay}")
        if self.ema_start < 0 or (self.ema_start and not self.ema_decay):
            raise DgmError(f"--ema-start must be >= 0 and needs --ema-decay > 0, got {self.ema_start}")
        if self.latent_dim == 0:
            self.latent_dim = 2 if points else 64
        if self.hidden == 0:
            self.hidden = arch.hidden
        if self.d_norm == "auto":
            plain = not obj.penalties(self) and not self.spectral_norm and obj.kind != "energy"
            self.d_norm = "batch" if (arch.batch_norm_d and plain) else "none"
        if self.n_critic == 0:
            self.n_critic = obj.n_critic
        self._check_conditional(obj)

    def _check_conditional(self, obj) -> None:
        """--conditional needs labels, a scoring D for projection / ac, and one sample per D input (no packing)."""
        if self.cond not in CONDS:
            raise DgmError(f"--cond must be one of {', '.join(CONDS)}, got {self.cond!r}")
        if not self.conditional:
            return
        if self.num_classes < 1:
            raise DgmError("--conditional needs a labelled dataset (e.g. digits, mnist, fashion-mnist, an image folder "
                           "with class subfolders); this one has no classes: drop --conditional")
        if obj.kind == "energy" and self.cond != "concat":
            raise DgmError(f"--cond {self.cond} needs a scoring discriminator; {self.objective} has an auto-encoder D: "
                           "use --cond concat or another objective")
        if self.pack > 1:
            raise DgmError("--pack scores packs of samples that may have different labels; it does not combine with "
                           "--conditional: drop one")
        if self.cond == "ac" and self.unroll_steps:
            raise DgmError("--unroll-steps does not unroll ACGAN's class loss; use --cond concat or projection, or "
                           "drop --unroll-steps")
        if not self.ac_weight >= 0:
            raise DgmError(f"--ac-weight must be >= 0, got {self.ac_weight}")


@MODELS.register("gan", help="GAN: MLP (2-D points) or DCGAN (images) with any objective (dgm list objectives)")
class GAN(ImageModel):
    """A generator and a discriminator; ``sample(n)`` draws G(z), z ~ N(0, I)."""

    Config = GANConfig
    train_step = "gan"
    data_kinds = ("images", "points")
    input_scale = "pm1"  # generators end in tanh: images in [-1, 1]
    truncation_modes = TRUNCATIONS  # z ~ N(0, I): PSI z towards the mean (default), or BigGAN's resampling
    #                                 (a generator with ``truncated``, StyleGAN's, adds "w-mean" first: in W to w_avg)
    capabilities = ()  # no likelihood: sample quality (images) or mode coverage (points) only
    summary_format = "{modes:.0f} modes, {hq_percent:.1f}% high-quality samples, reverse KL {rkl}"

    def __init__(self, config: GANConfig):
        super().__init__(config)
        c = config
        obj = OBJECTIVES.get(c.objective)
        self.data_shape = (c.channels,) if self.points else (c.channels, c.height, c.width)
        energy = obj.reconstruction if obj.kind == "energy" else None
        arch = GAN_ARCHS.get(c.arch)
        self.generator, self.discriminator = arch.build(c, energy)
        if arch.truncation_modes:  # e.g. BigGAN: resampling first
            self.truncation_modes = arch.truncation_modes
        if any(isinstance(m, SelfAttention) for m in self.generator.modules()):  # SAGAN, BigGAN
            self.capabilities = ("attention",)
        if hasattr(self.generator, "synthesis"):  # StyleGAN: style mixing and stochastic variation figures
            self.capabilities = self.capabilities + ("styles",)
        if c.spectral_norm:
            apply_spectral_norm(self.discriminator)
        if hasattr(self.generator, "truncated"):  # StyleGAN: truncation in W toward the tracked mean w by default
            self.truncation_modes = ("w-mean",) + TRUNCATIONS
        if c.ema_decay > 0:  # the EMA of G (dgm.nn.ema), updated by the GAN step, sampled by default
            self.generator_ema = ema_copy(self.generator)
        self.sample_ema = True  # what sample(ema=None) uses when the run has an EMA (dgm sample/eval --no-ema)

    @property
    def has_ema(self) -> bool:
        """True when the run keeps an EMA of the generator's weights (trained with --ema-decay)."""
        return hasattr(self, "generator_ema")

    def use_ema(self, on: bool) -> None:
        """Choose the weights ``sample`` uses by default: the EMA (on, the default) or the raw generator."""
        if not on and not self.has_ema:
            raise DgmError("--no-ema: this run keeps no EMA of its generator (train with --ema-decay); drop --no-ema")
        self.sample_ema = on

    def sampling_generator(self, ema: Optional[bool] = None):
        """The generator ``sample`` runs: the EMA when the run has one (unless ``ema=False``), else the raw G."""
        if ema and not self.has_ema:
            raise DgmError("ema=True: this run keeps no EMA of its generator (train with --ema-decay)")
        if ema is None:
            ema = self.sample_ema and self.has_ema
        return self.generator_ema if ema else self.generator

    def summarize(self, val):
        rkl = f"{val['reverse_kl']:.3f}" if "reverse_kl" in val else "undefined (no high-quality sample)"
        return super().summarize({**val, "hq_percent": 100 * val.get("high_quality", 0.0), "rkl": rkl})

    @property
    def default_metrics(self):
        """Mode coverage for 2-D points, sample quality for images."""
        return ("modes",) if self.points else ("fid", "kid", "is", "pr", "dc")

    @property
    def objective(self):
        return OBJECTIVES.get(self.config.objective)

    @property
    def optimizer_defaults(self):
        """(lr_d, lr_g, Adam betas) where the user gave none: the architecture paper's (SAGAN's TTUR: 4e-4, 1e-4,
        (0, 0.9)) for objectives trained with Adam, else the objective paper's."""
        obj, ttur = self.objective, GAN_ARCHS.get(self.config.arch).ttur
        return ttur if ttur and obj.optimizer == "adam" else (obj.lr_d, obj.lr_g, obj.betas)

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None, truncation: Optional[float] = None,
                      truncation_mode: Optional[str] = None) -> Tensor:
        """z ~ N(0, I), (n, latent_dim), truncated with PSI = ``truncation`` (``dgm.nn.latent``; mode None: the
        model's default, ``truncation_modes[0]``)."""
        mode = truncation_mode or self.truncation_modes[0]
        return gaussian_latent(n, self.config.latent_dim, generator, truncation, mode).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               z: Optional[Tensor] = None, ema: Optional[bool] = None, truncation: Optional[float] = None,
               truncation_mode: Optional[str] = None) -> Tensor:
        """n draws of G(z) (G(z, y) for a class-conditional run: y as given, or cycling 0, 1, 2, ...): points (n, D), or
        images (n, C, H, W) in [-1, 1]. G runs in eval mode (BN running stats).

        ``ema``: the EMA of G's weights (default when the run has one) or, False, the raw weights. ``truncation``:
        PSI of the truncation trick (``dgm.nn.latent``; PSI = 1 with "interpolate" is the ordinary sampler); the mode
        defaults to the run's first: "w-mean" for StyleGAN, "resample" for BigGAN, else "interpolate" (w_avg + PSI (w - w_avg) before --truncation-cutoff)."""
        y = self._default_labels(n, y)  # None for an unconditional model; classes 0, 1, 2, ... cycling by default
        if z is not None:
            self.check_latent(z)
            if truncation is not None:
                raise DgmError("give z or truncation, not both (truncate the codes yourself: dgm.nn.latent)")
        g = self.sampling_generator(ema)
        truncation_mode = truncation_mode or self.truncation_modes[0]
        in_w = truncation is not None and truncation_mode == "w-mean"
        if truncation_mode not in self.truncation_modes:
            raise DgmError(f"truncation mode {truncation_mode!r}: this run has {', '.join(self.truncation_modes)}")
        if in_w and not -1 <= truncation <= 1:
            raise DgmError(f"--truncation PSI in W must be in [-1, 1] (1: ordinary sampling, 0: the mean w), got "
                           f"{truncation}")
        with evaluating(g):
            if z is None:
                z = self.sample_latent(n, generator, None if in_w else truncation, truncation_mode)
            z = z.to(self.device)
            # the generator's other random inputs (StyleGAN's noise images), from the same generator as z
            extra = g.draw_inputs(n, generator, device=self.device) if hasattr(g, "draw_inputs") else {}
            if in_w:
                return g.truncated(z, truncation, self.config.truncation_cutoff, y=y, **extra)
            return g(z, **extra) if y is None else g(z, y, **extra)

    @torch.no_grad()
    def attention_maps(self, n: int, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None):
        """n samples and the attention of G's (first) self-attention block (SAGAN, Zhang et al. 2019): (images
        (n, C, H, W), beta (n, N, N)), column j of beta the map of query position j over the N = h w positions."""
        blocks = [m for m in self.sampling_generator().modules() if isinstance(m, SelfAttention)]
        if not blocks:
            raise DgmError("this run's generator has no self-attention: train with --arch sagan or biggan and "
                           "--attn-res > 0")
        blocks[0].keep_attention = True
        try:
            x = self.sample(n, y=y, generator=generator)
            beta = blocks[0].attention
        finally:
            blocks[0].keep_attention, blocks[0].attention = False, None
        return x, beta

    def to_unit(self, x: Tensor) -> Tensor:
        """Images in [0, 1] for grids (generator outputs live in [-1, 1])."""
        return ((x + 1) / 2).clamp(0, 1)

