"""What every image model shares: its config, the data it was built for, and the model registry."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Type

import torch
import torch.nn as nn

from ..errors import DgmError
from ..registry import Registry

MODELS: Registry = Registry("model")


class InputError(DgmError, ValueError):
    """An input a model cannot take: a batch of another shape, values that are not its integer levels, labels out
    of range or given to an unconditional model. A ``ValueError`` to library code; at the CLI a DgmError, so the
    user sees one line."""

# Config fields filled in from the dataset, not from the command line.
DATA_FIELDS = ("data_kind", "channels", "height", "width", "levels", "num_classes")
DATA_KINDS = ("images", "points", "pairs", "audio", "domains", "captioned")
# What a model may declare in ``ImageModel.capabilities``, and the methods each promises.
CAPABILITIES = {
    "log_prob": "log_prob(x, y): log p(x) in nats per example (the nll metric)",
    "elbo": "elbo_terms(x) and log_prob(x, k) with k importance samples (the nll metric with -k)",
    "complete": "complete(x, observed): sample the unobserved pixels (dgm sample --complete-from)",
    "latent": "reconstruct(x) and sample(z=, mean=) through a Gaussian latent (dgm sample --plots)",
    "codes": "codes(x), terms(x) and reconstruct(x) of a discrete code map (the recon metric)",
    "translate": "translate(x, direction) and triplets(x, direction) between two image domains (dgm sample --translate)",
    "adapt": "encode(x) and classify(x) of a domain-adaptation classifier on a source and a target domain (the "
             "adaptation metric)",
    "classify": "classify(x): K class logits of a semi-supervised classifier (the accuracy metric)",
    "fair": "encode(x) and classify(x) of a fair representation of rows with a sensitive attribute (the fairness "
            "metric)",
    "info_codes": "sample(n, cat=, cont=) and q(x) of InfoGAN's codes (dgm sample --vary-code)",
    "attention": "attention_maps(n): samples and their generator's self-attention maps (dgm sample --attention-maps)",
    "text_image": "embed_images(x), embed_texts(texts) and score(x, texts) in one unit-norm space (the retrieval "
                  "metric and figure)",
    "styles": "sampling_generator() with map/synthesis/broadcast of a style-based G (dgm sample --style-mix, "
              "--noise-sweep)",
}
# What a figure of `dgm sample` may need of a model (``ImageModel.abilities``): the capabilities above, the data kind,
# and what follows from the class's other declarations.
ABILITIES = {**CAPABILITIES,
             "sample": "sample(n) on its own (can_sample)",
             "gaussian-latent": "a Gaussian latent z: sample(z=...) and the truncation trick (truncation_modes)",
             "reconstruct": "reconstruct(x): an encoder and a decoder (latent or codes)",
             **{kind: f"a model of {kind} data" for kind in DATA_KINDS}}


@dataclass
class ModelConfig:
    """Shape of the data a model is built for; families add their own hyper-parameters.

    ``data_kind`` "images": (channels, height, width) images of ``levels`` integer levels; "points": vectors of
    ``channels`` real numbers (height = width = 1, levels = 0); "pairs": two image domains of one shape for a
    translation model (levels: domain X's; the model's config adds domain Y's); "audio": waveforms of ``levels``
    mu-law levels, trained on windows of ``width`` samples (channels = height = 1); "domains": a source and a
    target domain of one shape for domain adaptation (images on [-1, 1], or points with height = width = 1; levels 0);
    "captioned": images as "images" each with a caption (a text model's config adds its tokenizer's words, ``vocab``).
    """

    data_kind: str = "images"
    channels: int = 1
    height: int = 8
    width: int = 8
    levels: int = 2
    num_classes: int = 0

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise DgmError(f"{cls.__name__} has no option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        if "data_kind" not in d and d.get("levels") == 0:  # runs written before data_kind: levels 0 marked points
            d = {**d, "data_kind": "points"}
        check_numbers(d)  # before construction: a __post_init__ may build from the values (orders, layers)
        return check_numbers(cls(**d))

    @classmethod
    def refuse_unused(cls, given: Dict[str, Any]) -> None:
        """Raise a one-line DgmError for options ``given`` explicitly (by field name) that this config would
        ignore; options that apply pass. Nothing by default."""

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        """Option overrides (by field name) for the smallest sensible model of this kind: the contract test and
        smoke runs build it; a model whose defaults are already tiny keeps ``{}``."""
        return {}

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def derived_abilities(capabilities, can_sample: bool, truncation_modes) -> Tuple[str, ...]:
    """The capabilities, "sample" where a model samples on its own, "gaussian-latent" where it has truncation modes,
    "reconstruct" where it has an encoder (latent) or a code map (codes)."""
    out = [*capabilities] + ["sample"] * bool(can_sample) + ["gaussian-latent"] * bool(truncation_modes)
    return tuple(out + ["reconstruct"] * bool({"latent", "codes"} & set(capabilities)))


#: the largest seed a config field may hold (numpy's seed range, as --seed)
MAX_SEED = 2**32 - 1


#: the largest value of an integer field that is a size or a count (widths, layers, codes, orders, ...); fields that
#: are lengths of training (steps, images, warm-ups) are not bounded by it
MAX_SIZE = 2 ** 20
_LENGTH_SUFFIXES = ("_steps", "_warmup", "warmup", "_start", "_images", "_every", "sample_rate")


def check_numbers(config, _where: str = ""):
    """The rules every number of a config obeys, whatever its field (issue 32): a float is finite (NaN and
    infinity mean nothing as a weight, a rate or a scale), a seed is in 0..2**32-1; parts composed into the config
    (nested dataclasses, mappings of them) are checked too. Returns ``config``; a one-line DgmError names the flag."""
    import math

    values = ({f.name: getattr(config, f.name) for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config)
              else dict(config) if isinstance(config, dict) else {})
    for name, v in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(v, float) and not math.isfinite(v):
            raise DgmError(f"{flag} must be a finite number, got {v}")
        seed = name == "seed" or name.endswith("_seed")
        if seed and isinstance(v, int) and not 0 <= v <= MAX_SEED:
            raise DgmError(f"{flag} must be in 0..{MAX_SEED}, got {v}")
        if (isinstance(v, int) and not isinstance(v, bool) and not seed and v > MAX_SIZE
                and not name.endswith(_LENGTH_SUFFIXES)):
            raise DgmError(f"{flag} must be <= {MAX_SIZE:,} (dgm's bound on a size or a count: a larger one cannot be "
                           f"built in memory or in time), got {v:,}")
        if dataclasses.is_dataclass(v) or isinstance(v, dict):
            check_numbers(v, name)
    return config


class ImageModel(nn.Module):
    """Base of all models: keeps its config so that a run can be rebuilt from it alone.

    What a model *is* is declared here, on the class, and read by the other layers (training, metrics, cli);
    nothing outside ``models/`` tests a model's name or probes its attributes.
    """

    Config: Type[ModelConfig] = ModelConfig
    #: the training step that fits it (``dgm list families``): likelihood, vae, aae, avb, vq, gan
    train_step: str = "likelihood"
    #: the data kinds it can be built for (``ModelConfig.data_kind``)
    data_kinds: Tuple[str, ...] = ("images",)
    #: how the dataset feeds it: "levels" (integers 0..K-1) or "pm1" (images scaled to [-1, 1])
    input_scale: str = "levels"
    #: what `dgm eval RUN` measures without --metric
    default_metrics: Tuple[str, ...] = ("nll",)
    #: the model name of the run that `dgm train MODEL --from RUN` needs (None: --from does not apply)
    source_run: Optional[str] = None
    #: False when it cannot sample on its own (a VQ-VAE needs a prior fitted to its codes); sample() then raises
    can_sample: bool = True
    #: how ``sample(n, method=...)`` may generate, default first: ("cached", "naive") for autoregressive models with
    #: per-layer caches, ("naive",) for the other element-by-element samplers, () where sampling is one pass
    sample_methods: Tuple[str, ...] = ()
    #: what it can do beyond ``sample`` (read instead of probing for methods; see ``CAPABILITIES``)
    capabilities: Tuple[str, ...] = ("log_prob",)
    #: models with a Gaussian latent: how ``sample(n, truncation=PSI, truncation_mode=...)`` truncates it, default
    #: first (``dgm.nn.latent``); () where there is no such latent (dgm sample --truncation/--interpolate refuse)
    truncation_modes: Tuple[str, ...] = ()
    #: latent-variable models: how ``log_prob(x, k)`` estimates the NLL (``{k}``: importance samples)
    nll_estimator: Optional[str] = None
    #: what `dgm sample RUN` draws without --figure (``dgm list figures``)
    default_figure: str = "samples"
    #: the metric part of `dgm train`'s closing line, ``str.format``-ted with the validation values
    summary_format: str = "val NLL {nll_nats:.3f} nats/example = {bits_per_dim:.4f} bits/dim"

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    @classmethod
    def source_options(cls, run: str, source: Dict[str, Any]) -> Dict[str, Any]:
        """Config fields a model with a ``source_run`` takes from that run (``source``: its run config)."""
        return {}

    def init_from_sources(self, load) -> None:
        """At the start of a new run of a model with a ``source_run``: copy what it needs from that run.
        ``load`` is ``dgm.runs.load``, handed in by the training layer: a model never imports the layers above it."""

    def training_log_prob(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """What the likelihood training step maximises: ``log_prob(x, y)``; any-order models draw an order per
        example here."""
        return self.log_prob(x, y)

    def validation_log_prob(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """What validation during training measures (the best checkpoint is chosen by it): ``log_prob(x, y)``; a
        model whose full measure is costly returns a stated cheaper estimate here (``validation_note`` says which),
        and `dgm eval` keeps the full measure."""
        return self.log_prob(x, y)

    #: what ``validation_log_prob`` estimates when it is not the full measure ("" when it is)
    validation_note: str = ""

    def loaded_fault(self) -> Optional[str]:
        """What is wrong with weights just loaded from a file (None: nothing): a NaN or infinite value, or (models
        with more to check) a table that breaks the model's promises. ``dgm.load`` refuses a file with a fault."""
        for name, t in self.state_dict().items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad = int(t.numel() - torch.isfinite(t).sum())
                return f"{bad} of its {t.numel()} values of {name} are NaN or infinite"
        return None

    def start_note(self) -> str:
        """A line `dgm train` prints when training starts (e.g. a WaveNet's receptive field); "" for none."""
        return ""

    def summarize(self, val: Dict[str, float]) -> str:
        """The validation values in one line for `dgm train`'s summary; "" when they lack a field it names."""
        try:
            return self.summary_format.format(**val)
        except KeyError:
            return ""

    def compile_targets(self) -> Tuple[nn.Module, ...]:
        """The networks that `--compile` compiles for sampling and evaluation: the model itself where it defines
        ``forward`` (an autoregressive model: one pass gives every conditional), else its outermost sub-networks that
        define one (a GAN's generator and discriminator, a VAE's encoder and decoder)."""
        def own_forward(m: nn.Module) -> bool:
            return type(m).forward is not nn.Module.forward

        def outermost(m: nn.Module):
            for child in m.children():
                if own_forward(child):
                    yield child
                else:
                    yield from outermost(child)

        return (self,) if own_forward(self) else tuple(outermost(self))

    @property
    def abilities(self) -> Tuple[str, ...]:
        """What the figures of `dgm sample` may need of this model (``ABILITIES``): ``derived_abilities`` of its
        declarations, and its data kind."""
        return derived_abilities(self.capabilities, self.can_sample, self.truncation_modes) + (self.config.data_kind,)

    @property
    def dims(self) -> int:
        c = self.config
        return c.channels * c.height * c.width

    @property
    def points(self) -> bool:
        """True when the model is built for vectors of real numbers (toy 2-D mixtures), not images."""
        return self.config.data_kind == "points"

    @property
    def conditional(self) -> bool:
        """True when the model takes class labels y (trained with --conditional on a labelled dataset)."""
        return bool(getattr(self.config, "conditional", False) and self.config.num_classes)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_shape(self, x: torch.Tensor) -> None:
        """ValueError unless x is a (B, C, H, W) batch of this model's image shape."""
        c = self.config
        want = (c.channels, c.height, c.width)
        if not isinstance(x, torch.Tensor):
            raise InputError(f"expected x as a torch.Tensor of shape (B, {want[0]}, {want[1]}, {want[2]}), "
                             f"got {type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise InputError(f"expected x of shape (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x.shape)}")

    def check_input(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> None:
        """ValueError unless x is a batch of this model's shape holding integer levels 0..K-1 and y fits the model
        (``check_labels``). Every public method that takes images calls it; it costs a few elementwise comparisons
        and one device sync, so it runs on the training path too (a wrong input there is a wrong loss)."""
        self.check_shape(x)
        self.check_levels(x)
        self.check_labels(y, x.shape[0])

    def check_levels(self, x: torch.Tensor) -> None:
        """ValueError unless every value of x is an integer level 0..K-1 (NaN, infinities, fractions, negative
        values and K or more are refused; e.g. raw 0..255 bytes on a binary model)."""
        if x.dtype == torch.bool:
            return
        if x.is_complex():
            raise InputError(f"expected x to hold real integer levels, got a {x.dtype} tensor")
        x, top = x.detach(), self.config.levels - 1
        nearest = (x.floor() if x.is_floating_point() else x).clamp(0, top)  # NaN stays NaN, and NaN != NaN
        if torch.equal(x, nearest):  # one pass and one sync: cheap enough for every training step
            return
        v = x[x != nearest].double()
        inside = v[(v >= 0) & (v <= top)]  # in range, so fractions
        if bool(v.isnan().any()):
            got = "NaN values"
        elif inside.numel():
            got = f"non-integer values such as {float(inside[0]):g}"
        else:
            got = f"values from {float(x.min()):g} to {float(x.max()):g}; scale or binarize them to its levels first"
        raise InputError(f"expected x to hold integer levels 0..{top} (this model's {top + 1} levels), got {got}")

    def _default_labels(self, n: int, y: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """The labels of n draws: y as given (one label for all, or n), checked; 0, 1, 2, ... cycling when None."""
        if not self.conditional:
            self.check_labels(y, n)  # refuses labels
            return None
        if y is None:
            return torch.arange(n, device=self.device) % self.config.num_classes
        y = torch.as_tensor(y, device=self.device)
        y = y.reshape(-1).expand(n) if y.numel() == 1 else y
        self.check_labels(y, n)
        return y.long()

    def check_labels(self, y: Optional[torch.Tensor], n: int) -> None:
        """ValueError unless y fits: None for an unconditional model; (n,) integer class labels in
        0..num_classes-1 for a class-conditional one."""
        if not self.conditional:
            if y is not None:
                raise InputError(f"this {type(self).__name__} is not class-conditional: pass no labels "
                                 "(y=None, no --label)")
            return
        k = self.config.num_classes
        if y is None:
            raise InputError(f"this model is class-conditional: pass y, ({n},) class labels in 0..{k - 1}")
        if not isinstance(y, torch.Tensor) or y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
            kind = y.dtype if isinstance(y, torch.Tensor) else type(y).__name__
            raise InputError(f"expected y as an integer tensor of class labels in 0..{k - 1}, got {kind}")
        if tuple(y.shape) != (n,):
            raise InputError(f"expected y of shape ({n},), one class label per example, got {tuple(y.shape)}")
        if n and (int(y.min()) < 0 or int(y.max()) >= k):
            raise InputError(f"expected class labels y in 0..{k - 1}, got values from {int(y.min())} to "
                             f"{int(y.max())}")

    def check_latent(self, z: torch.Tensor) -> None:
        """ValueError unless z is a finite (n, latent_dim) batch of latent codes (models with a ``latent_dim``)."""
        d = self.config.latent_dim
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != d:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise InputError(f"expected z of shape (n, {d}), got {got}")
        if not bool(torch.isfinite(z).all()):
            raise InputError("expected finite latent codes z, got NaN or infinite values")

    def scaled_input(self, x: torch.Tensor) -> torch.Tensor:
        """Levels 0..K-1 -> [-1, 1] in the parameters' dtype: the networks' input scale."""
        dtype = next(self.parameters()).dtype
        return x.to(dtype) * (2.0 / (self.config.levels - 1)) - 1.0

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Samples as images in [0, 1] (for grids): levels 0..K-1 divided by K-1."""
        return x / (self.config.levels - 1)


#: words in a config field's name that make it a size of the network (named by the memory error of a build)
_SIZE_WORDS = ("hidden", "layer", "dim", "width", "channel", "block", "code", "filter", "depth", "feature", "head",
               "unit", "fmap", "stage", "resolution")


def shell_model(name: str, config: Dict[str, Any]) -> Optional[ImageModel]:
    """Model ``name`` built on the meta device: every parameter's shape and no memory for any of them (nor a draw
    from any random generator); None for a model whose construction computes with its tensors (its masks, orders)."""
    cls = MODELS.get(name)
    cfg = cls.Config.from_dict(config)
    rng = torch.get_rng_state()
    try:
        with torch.device("meta"):
            return cls(cfg)
    except DgmError:
        raise
    except Exception:  # e.g. .item() or a copy of a meta tensor while building masks
        return None
    finally:
        torch.set_rng_state(rng)


def size_flags(cfg) -> str:
    names = [f.name for f in dataclasses.fields(cfg) if f.name not in DATA_FIELDS
             and isinstance(getattr(cfg, f.name), int) and not isinstance(getattr(cfg, f.name), bool)
             and any(w in f.name for w in _SIZE_WORDS)]
    return ", ".join("--" + n.replace("_", "-") for n in names) or "its size options"


def build_model(name: str, config: Dict[str, Any], source: Optional[str] = None) -> ImageModel:
    """Build registered model ``name`` from a plain dict of its config fields. Not enough memory for it is one line
    naming the model, its parameter count, its size options and the file the config was read from (``source``)."""
    from ..errors import allocating, free_memory, human_bytes

    cls = MODELS.get(name)
    try:
        cfg = cls.Config.from_dict(config)
    except DgmError as e:
        if source is None:
            raise
        raise DgmError(f"{source}: refused: its model config is not one dgm builds ({e})") from None
    what = f"building the {name} model" + (f" that {source} describes" if source else "")
    fix = ("this file asks for more than the machine has (altered, or from a bigger machine)" if source else
           f"lower its size ({size_flags(cfg)})")
    shell = shell_model(name, config)
    if shell is not None:
        n = sum(p.numel() for p in shell.parameters()) + sum(b.numel() for b in shell.buffers())
        what += f" ({n:,} weights, {human_bytes(4 * n)} in float32)"
        free = free_memory()
        if free is not None and 4 * n > free:  # refused before a byte is allocated
            raise DgmError(f"not enough memory {what}: {human_bytes(free)} is free; {fix}")
    with allocating(what, fix):
        return cls(cfg)
