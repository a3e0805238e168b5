"""GANs: a generator G(z) and a discriminator / critic D(x) -- MLPs for 2-D points, DCGAN for images.

The model holds the two networks and its config; the networks come from the architecture registry
``gan_nets.GAN_ARCHS``, the losses from ``dgm.objectives``, and the alternating updates (n_critic, unrolling,
TTUR, penalties) live in ``dgm.training.gan_step``. ``GANConfig`` holds the options every run has and composes the
parts the run uses, each declaring its own options: the objective's, the architecture's and the regularisers'
(``gan_regularisers``: R1, packing, minibatch features, EMA, conditioning, unrolling, instance noise, GDPP,
orthogonal regularisation).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import Tensor

from ..errors import DgmError
from ..nn import SelfAttention, apply_spectral_norm
from ..nn.blocks import evaluating
from ..nn.latent import TRUNCATIONS, gaussian_latent
from ..objectives import OBJECTIVES
from ..part_options import Options, OptionGroup, build, check_ranges, check_types, names
from .base import MODELS, ImageModel, ModelConfig, check_numbers
from .gan_nets import GAN_ARCHS, AutoencoderDiscriminator, Discriminator  # noqa: F401  (D types, re-exported)
from .gan_regularisers import REGULARISERS, Regulariser, flag

NORMS = ("auto", "batch", "layer", "none")
# How D's and G's gradients are taken in one training step. alternating (dgm's default, the common PyTorch loop):
# D steps, then G's loss is taken against the updated D. simultaneous: G's gradient is taken against D as it was
# before this step's D update, so both gradients come from the same parameters, as in the toy-mixture papers' code
# (GDPP: sess.run([g_train_op, d_train_op]); PacGAN/ALI: one Blocks GradientDescent over both losses).
UPDATE_ORDERS = ("alternating", "simultaneous")


def _chosen_objective(given: Mapping[str, Any]) -> str:
    """The objective of a run with these options given (``auto``: the architecture's paper loss, else
    non-saturating), for the command line before the config exists."""
    name = given.get("objective", "auto")
    if name == "auto":
        arch = given.get("arch", "auto")
        defaults = GAN_ARCHS.get(arch).defaults if arch in GAN_ARCHS else {}
        return defaults.get("objective", "non-saturating")
    return name


def _objective_groups(given: Mapping[str, Any]) -> List[OptionGroup]:
    chosen = _chosen_objective(given)
    return [OptionGroup(f"objective {n} options", OBJECTIVES.get(n).Options, n == chosen, f"--objective {n}")
            for n in OBJECTIVES.names() if OBJECTIVES.get(n).options]


def _arch_groups(given: Mapping[str, Any]) -> List[OptionGroup]:
    chosen = given.get("arch", "auto")
    return [OptionGroup(f"--arch {n} options", GAN_ARCHS.get(n).Options, n == chosen, f"--arch {n}")
            for n in GAN_ARCHS.names() if GAN_ARCHS.get(n).options]


def _regulariser_groups(given: Mapping[str, Any]) -> List[OptionGroup]:
    return [OptionGroup(f"regulariser {cls.part_name} (any --arch, --objective): {REGULARISERS.help(cls.part_name)}",
                        cls, True) for cls in REGULARISERS.values()]


def _parts():
    """Every option class a GANConfig may compose: regularisers first (their defaults are the "off" values the flat
    view gives for a regulariser a run does not use), then objectives and architectures."""
    return ([*REGULARISERS.values()] + [OBJECTIVES.get(n).Options for n in OBJECTIVES.names()]
            + [GAN_ARCHS.get(n).Options for n in GAN_ARCHS.names()])


def option_defaults() -> Dict[str, Any]:
    """Every option a part declares -> its default (the first declaring part's; see ``_parts``)."""
    out: Dict[str, Any] = {}
    for cls in _parts():
        for f in dataclasses.fields(cls):
            out.setdefault(f.name, f.default)
    return out


COMPOSED = ("objective_options", "arch_options", "regularisers")


@dataclass(init=False)
class GANConfig(ModelConfig):
    """The options every GAN run has, and the parts it composes, each with its own options (``config.json``: one
    mapping per part): ``objective_options`` (declared beside the objective in ``objectives/gan.py``),
    ``arch_options`` (in the architecture's file, ``gan_nets/``) and ``regularisers`` (name -> options, one file
    each in ``gan_regularisers/``; only those the run uses).

    ``GANConfig(**options)`` takes every option flat too (``gp_weight=5``, ``ema_decay=0.999``: how the command line,
    the benchmarks and the config.json of runs written before issue 31 give them) and composes the parts from them;
    ``config.gp_weight`` reads an option of a part (read-only; a part the run does not use gives its default).
    Subclasses are declared ``@dataclass(init=False)`` (this ``__init__`` takes the flat options).
    """

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
    update_order: str = "alternating"  # alternating: G against the updated D | simultaneous: both from one evaluation
    protocol: str = ""                # toy-mixture preset veegan | pacgan (dgm.bench.protocols): fills defaults
    # the parts the run uses (None until composed from the flat options); the command line lists their options
    objective_options: Options = field(default=None, metadata={"cli": False, "options": _objective_groups})
    arch_options: Options = field(default=None, metadata={"cli": False, "options": _arch_groups})
    regularisers: Dict[str, Regulariser] = field(default=None, metadata={"cli": False, "options": _regulariser_groups})

    def __init__(self, **options):
        own = {f.name for f in dataclasses.fields(self)}
        flat = {k: v for k, v in options.items() if k not in own}
        unknown = sorted(set(flat) - set(option_defaults()))
        if unknown:
            raise DgmError(f"{type(self).__name__} has no option(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(own - set(COMPOSED) | set(option_defaults())))}")
        for f in dataclasses.fields(self):
            setattr(self, f.name, options[f.name] if f.name in options else _field_default(f))
        self._flat = {k: v for k, v in flat.items() if v is not None}  # None: not given
        self.__post_init__()
        self.__dict__.pop("_flat", None)

    # -- the flat view -------------------------------------------------------------------------------------------
    def __getattr__(self, name: str):
        """An option of a part the run uses (``config.gp_weight``), else that option's default."""
        if name.startswith("_"):
            raise AttributeError(name)
        d = self.__dict__
        for part in (d.get("objective_options"), d.get("arch_options"), *(d.get("regularisers") or {}).values()):
            if isinstance(part, Options) and name in part.__dataclass_fields__:
                return getattr(part, name)
        defaults = option_defaults()
        if name in defaults:
            return defaults[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or option {name!r}")

    def __setattr__(self, name: str, value) -> None:
        if name not in self.__dataclass_fields__ and not name.startswith("_") and name in option_defaults():
            raise AttributeError(f"{name} is an option of a GAN part, read-only on the config: build a new config "
                                 f"with it (GANConfig(..., {name}=...)) or change the part's options")
        super().__setattr__(name, value)

    @property
    def objective_spec(self):
        """The registered ``Objective`` of this config."""
        return OBJECTIVES.get(self.objective)

    @property
    def arch_spec(self):
        """The registered ``GANArch`` of this config."""
        return GAN_ARCHS.get(self.arch)

    def penalties(self) -> list:
        """D's gradient penalties: the objective's (WGAN-GP, DRAGAN), then each regulariser's (R1)."""
        return self.objective_spec.penalties(self) + [p for r in self.regularisers.values() for p in r.penalties()]

    def flat(self) -> Dict[str, Any]:
        """This config as one flat mapping, as config.json held it before issue 31: every field but the composed
        parts, then every option any part declares (those of parts the run does not use at their defaults)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in COMPOSED}
        return {**out, **{k: getattr(self, k) for k in option_defaults()}}

    # -- reading and refusing options ----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "GANConfig":
        """A config from config.json's ``model_config``: the composed form (one mapping per part) or the flat one
        of runs written before issue 31; a value of the wrong type is refused in one line."""
        d = dict(d)
        if "data_kind" not in d and d.get("levels") == 0:  # runs written before data_kind: levels 0 marked points
            d["data_kind"] = "points"
        for part in _parts():  # (a flat None is an option not given, as before: r1 and ortho_reg were Optional)
            check_types(part, {k: v for k, v in d.items() if k in part.__dataclass_fields__ and v is not None},
                        "model_config")
        check_numbers(d)  # before construction: a __post_init__ may build from the values (orders, layers)
        return check_numbers(cls(**d))

    @classmethod
    def refuse_unused(cls, given: Dict[str, Any]) -> None:
        """An option given explicitly (by name) to a part the run does not use is refused in one line naming the part
        that reads it: another objective's (``--gp-weight`` with hinge), another architecture's, or a regulariser's
        that is off (``--mbstd-group`` without ``--mbstd``). Each part declares its options, so nothing is ignored."""
        name = _chosen_objective(given)
        if name not in OBJECTIVES.names():
            return  # an unknown objective: __post_init__ says so with the nearest name
        knobs = {o for n in OBJECTIVES.names() for o in OBJECTIVES.get(n).options}
        own = OBJECTIVES.get(name).options
        unused = [k for k in given if k in knobs and k not in own]
        if unused:
            flags = " ".join(flag(o) for o in unused)
            its = " ".join(flag(o) for o in own) or "none"
            raise DgmError(f"{flags}: not used by objective {name} (its options: {its}); drop it or choose an "
                           "objective that reads it (dgm list objectives)")
        arch = given.get("arch", cls.arch)
        if arch in GAN_ARCHS.names() or arch == "auto":
            own = GAN_ARCHS.get(arch).options if arch != "auto" else ()
            for other in GAN_ARCHS.names():
                unused = [k for k in GAN_ARCHS.get(other).options if k in given and k not in own]
                if unused:
                    flags = " ".join(flag(o) for o in unused)
                    raise DgmError(f"{flags}: an option of --arch {other}, not used by --arch {arch}; drop it or "
                                   f"choose --arch {other}")
        defaults = GAN_ARCHS.get(arch).defaults if arch in GAN_ARCHS.names() else {}
        for part in REGULARISERS.values():
            part.refuse(given, defaults)

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
        for part in self.regularisers.values():
            if part.gan_step_only:
                raise DgmError(f"{flag(names(type(part))[0])} is for dgm train gan; {model} has a training step of its "
                               "own that does not implement it: drop it")

    # -- composing the parts -------------------------------------------------------------------------------------
    def __post_init__(self):
        given = self.__dict__.get("_flat", {})
        points = self.data_kind == "points"
        if self.arch == "auto":
            self.arch = "mlp" if points else "dcgan"
        arch = GAN_ARCHS.get(self.arch)
        for name, value in arch.defaults.items():  # the architecture's paper values, where the user gave none
            if name in self.__dataclass_fields__ and getattr(self, name) in (None, "auto"):
                setattr(self, name, value)  # (a regulariser reads its own: R1's gamma, the ortho. reg.'s beta)
        self.objective = "non-saturating" if self.objective == "auto" else self.objective
        self.spectral_norm = bool(self.spectral_norm)
        obj = OBJECTIVES.get(self.objective)  # unknown name -> one-line error with the nearest name
        self.objective_options = _part(obj.Options, self.objective_options, given, "objective_options")
        self.arch_options = _part(arch.Options, self.arch_options, given, "arch_options")
        self._compose_regularisers(given)
        if self.d_norm not in NORMS:
            raise DgmError(f"--d-norm must be one of {', '.join(NORMS)}, got {self.d_norm!r}")
        if self.update_order not in UPDATE_ORDERS:
            raise DgmError(f"--update-order must be one of {', '.join(UPDATE_ORDERS)}, got {self.update_order!r}")
        for name in ("n_critic", "latent_dim", "hidden"):
            if getattr(self, name) < 0:
                raise DgmError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.layers < 1:
            raise DgmError(f"--layers must be >= 1, got {self.layers}")
        for name in ("lr_g", "lr_d"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise DgmError(f"--{name.replace('_', '-')} must be > 0, got {v}")
        if self.data_kind not in arch.data_kinds:
            kinds = {"points": "2-D point datasets", "images": "image data"}
            raise DgmError(f"--arch {self.arch} needs {' or '.join(kinds[k] for k in arch.data_kinds)}; "
                           f"use --arch mlp for {kinds[self.data_kind]}")
        for part in (self.objective_options, self.arch_options):
            check_ranges(part)
            part.check(self)
        if self.latent_dim == 0:
            self.latent_dim = 2 if points else 64
        if self.hidden == 0:
            self.hidden = arch.hidden
        if self.d_norm == "auto":
            plain = not self.penalties() and not self.spectral_norm and obj.kind != "energy"
            self.d_norm = "batch" if (arch.batch_norm_d and plain) else "none"
        if self.n_critic == 0:
            self.n_critic = obj.n_critic

    def _compose_regularisers(self, given: Mapping[str, Any]) -> None:
        """``self.regularisers``: from a config file's mapping (exactly the regularisers listed there, with their
        values) or, when None, from the flat options given (every regulariser, then those that are on); each one
        resolves the values it was not given (an architecture's paper value) and checks them all."""
        listed = self.regularisers
        if listed is not None and not isinstance(listed, Mapping):
            raise DgmError(f"regularisers must be a mapping of regulariser name -> options, got {listed!r}")
        for name in listed or {}:
            REGULARISERS.get(name)  # an unknown name: one line with the nearest one
        built = []
        for cls in REGULARISERS.values():
            own = {k: given[k] for k in names(cls) if k in given}
            if listed is not None and cls.part_name not in listed and not own:
                continue
            values = listed.get(cls.part_name, {}) if listed is not None else {}
            part = _part(cls, values, own, f"regularisers {cls.part_name!r}")
            fixed = names(cls) if listed is not None and cls.part_name in listed else tuple(own)
            built.append((cls.part_name, part, fixed))
        for _, part, fixed in built:
            part.resolve(self, fixed)
        self.regularisers = {name: part for name, part, _ in built if part.active()}
        for _, part, _ in built:
            check_ranges(part)
            part.check(self)


def _field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _part(cls: type, current, given: Mapping[str, Any], where: str) -> Options:
    """One part's options: ``current`` (an instance, or a config file's mapping: unknown keys are refused), or the
    defaults when None, with the flat options ``given`` that the part declares on top."""
    part = cls() if current is None else build(cls, current, f"model_config {where}")
    own = {k: given[k] for k in names(cls) if k in given}
    return dataclasses.replace(part, **own) if own else part


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
        for part in c.regularisers.values():  # e.g. the EMA of G (gan_regularisers/ema.py), sampled by default
            part.build(self)
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

