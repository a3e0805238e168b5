"""Figures as registered parts: what `dgm sample RUN --figure NAME` draws (`dgm list figures`).

A figure file defines ``make`` and registers it next to it::

    register(Figure("interpolate", ("gaussian-latent", "images"), _make, "rows of codes between random pairs",
                    options=(Option("interpolate", str, "slerp", choices=("lerp", "slerp")), STEPS, LABEL)))

``needs`` are abilities of the model (``dgm.models.base.ABILITIES``; ``"a|b"``: either); a model without one is
refused in one line listing the figures it can make. ``options`` are the figure's own flags (``dgm.options``): the
command line is built from them, and one that the chosen figure does not read is refused. ``make(model, out, n,
seed, **options)`` writes its files (``out``: the PNG path, its other files beside it) and returns their paths.
``n`` is the default of -n (None: a fixed layout that reads no -n); ``file(model, seed, options)`` the default name
in RUN/samples/; ``selected_by``: the option whose flag alone selects the figure (the flags of dgm before --figure,
e.g. ``--interpolate slerp``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch

from ..errors import DgmError
from ..models.base import ABILITIES, derived_abilities
from ..options import Option, readers as option_readers, refuse_unread, union
from ..outputs import save_tensor as save_tensor_file, undo_on_failure
from ..registry import Registry

FIGURES: Registry = Registry("figure")
#: what a refusal says a figure needs, for the abilities users meet (the rest: ``ABILITIES``' text)
NEEDS_TEXT = {
    "sample": "a model that samples on its own (a VQ-VAE samples through its prior: dgm train vq-vae-prior --from RUN)",
    "gaussian-latent": "a model with a Gaussian latent ({models})",
    "latent": "a latent-variable model with an encoder ({models})",
    "reconstruct": "a model with an encoder or a code map ({models})",
    "complete": "an autoregressive model that completes images ({models})",
    "styles": "a stylegan run (dgm train gan --arch stylegan)",
    "attention": "a GAN with self-attention (--arch sagan or biggan)",
    "info_codes": "an InfoGAN run",
    "translate": "a translation run (cyclegan)",
    "images": "an image run", "points": "a run on 2-D points", "audio": "an audio run (wavenet)",
}
#: the most images one figure may draw (-n)
MAX_SAMPLES = 100_000


@dataclass(frozen=True)
class Figure:
    """A figure by name: what it needs of a model, its options, and the function that draws it."""
    name: str
    needs: Tuple[str, ...]
    make: Callable[..., List[Path]]
    help: str
    options: Tuple[Option, ...] = ()
    n: Optional[int] = 64
    max_n: int = MAX_SAMPLES
    file: Callable[[Any, int, Dict[str, Any]], str] = lambda model, seed, o: f"sample-seed{seed}.png"
    selected_by: Optional[str] = None

    def __post_init__(self):
        unknown = [a for need in self.needs for a in need.split("|") if a not in ABILITIES]
        if unknown:
            raise ValueError(f"figure {self.name!r}: unknown needs {unknown} (known: {', '.join(ABILITIES)})")
        if not self.help:
            raise ValueError(f"figure {self.name!r} needs a one-line help")
        if self.selected_by is not None and self.selected_by not in {o.name for o in self.options}:
            raise ValueError(f"figure {self.name!r}: selected_by {self.selected_by!r} is not one of its options")

    def missing(self, model) -> List[str]:
        """The needs ``model`` does not meet ([] when it can make this figure)."""
        have = set(model.abilities)
        return [need for need in self.needs if not set(need.split("|")) & have]


def register(figure: Figure) -> Figure:
    """Add ``figure`` to FIGURES under its name; its options must agree with other figures' options of that name."""
    if not isinstance(figure, Figure):
        raise TypeError(f"register() takes a Figure, got {type(figure).__name__}")
    union([(f.name, f.options) for f in FIGURES.values()] + [(figure.name, figure.options)])
    FIGURES.add(figure.name, figure, figure.help)
    return figure


def figure_options() -> Dict[str, Option]:
    """name -> Option over every registered figure (what `dgm sample` offers)."""
    return union((f.name, f.options) for f in FIGURES.values())


def _given(value) -> bool:
    """True for an option on the command line: a value, or a switch that is on (0 is a value)."""
    return value is not None and value is not False


def options_cli(name: str) -> str:
    """The command-line flag of figure option ``name``."""
    return figure_options()[name].cli


def readers() -> Dict[str, List[str]]:
    """option name -> the figures that read it."""
    return option_readers((f.name, f.options) for f in FIGURES.values())


def can_make(model) -> List[str]:
    """The figures ``model`` can make, its default first."""
    names = [f.name for f in FIGURES.values() if not f.missing(model)]
    return sorted(names, key=lambda n: n != model.default_figure)


def choose(given: Mapping[str, Any], figure: Optional[str] = None) -> Optional[str]:
    """The figure a command names: ``figure`` (--figure), else the one whose selecting flag was given (None: the
    model's default). Two selecting flags, or one that disagrees with --figure, are refused."""
    options = figure_options()
    chosen = [f.name for f in FIGURES.values() if f.selected_by and _given(given.get(f.selected_by))]
    flags = [options[FIGURES.get(n).selected_by].cli for n in chosen]
    if len(chosen) > 1:
        raise DgmError(f"{' and '.join(flags)} each make their own figure; give one of them")
    if figure is not None:
        FIGURES.get(figure)  # unknown: the nearest name
        if chosen and chosen[0] != figure:
            raise DgmError(f"{flags[0]} makes figure {chosen[0]}, not {figure}: drop one of them")
        return figure
    return chosen[0] if chosen else None


def _models_with(ability: str) -> str:
    """The registered models whose class declares ``ability`` (for the refusal's list)."""
    from ..models import MODELS

    return ", ".join(name for name in MODELS.names() if ability in derived_abilities(
        MODELS.get(name).capabilities, MODELS.get(name).can_sample, MODELS.get(name).truncation_modes))


def _needs_text(ability: str) -> str:
    text = NEEDS_TEXT.get(ability, ABILITIES[ability])
    return text.format(models=_models_with(ability)) if "{models}" in text else text


def _how(name: str) -> str:
    """How a command chooses figure ``name``: --figure NAME, or the flag that selects it."""
    fig = FIGURES.get(name)
    if fig.selected_by is None:
        return f"--figure {name}"
    o = figure_options()[fig.selected_by]
    value = o.metavar or ("|".join(o.choices) if o.choices else "")
    return f"{o.cli}{' ' + value if value else ''} (figure {name})"


def check_given(given: Mapping[str, Any], name: Optional[str]) -> None:
    """Before the run is loaded: refuse options that the named figure (None: any model's default figure) does not
    read."""
    from ..models import MODELS

    chosen = [name] if name else sorted({MODELS.get(m).default_figure for m in MODELS.names()})
    refuse_unread(given, readers(), chosen, "figure", _how, figure_options(),
                  None if name else "the run's default figure", prefer=["samples"])


def resolve(model, name: Optional[str], given: Mapping[str, Any], n: Optional[int],
            by_flag: bool = False) -> Tuple[Figure, Dict, int]:
    """The figure to draw for ``model`` (None: its default), its options checked (defaults filled in) and -n.
    ``by_flag``: the figure was chosen by its own flag (a refusal names the flag, not the figure)."""
    fig = FIGURES.get(name or model.default_figure)
    missing = fig.missing(model)
    if missing:
        what = " or ".join(_needs_text(a) for a in missing[0].split("|"))
        typed = options_cli(fig.selected_by) if by_flag else f"figure {fig.name}"
        raise DgmError(f"{typed} needs {what}; this {model.run_config['model']} run can make: "
                       f"{', '.join(can_make(model)) or 'none'} (dgm list figures)")
    refuse_unread(given, readers(), [fig.name], "figure", _how, figure_options(), prefer=can_make(model))
    if n is not None and fig.n is None:
        raise DgmError(f"-n: figure {fig.name} draws a fixed layout and reads no -n; drop -n")
    n = fig.n if n is None else n
    if n is not None and not 1 <= n <= fig.max_n:
        raise DgmError(f"-n must be in 1..{fig.max_n} for figure {fig.name}, got {n}")
    options = {o.name: o.validate(given.get(o.name)) for o in fig.options}
    return fig, options, n


# -- options and helpers several figures share ------------------------------------------------------------------

def _label_check(value):
    if value < 0:
        raise DgmError(f"--label must be a class label >= 0, got {value}")


LABEL = Option("label", int, None, "class to draw (class-conditional models; default: classes 0, 1, 2, ... cycling)",
               check=_label_check)
NAIVE = Option("naive", bool, False, "autoregressive models: run the whole network once per element (the reference) "
               "instead of the default cached sampling; same samples, slower")
SAVE_TENSOR = Option("save_tensor", str, None, "also save what the figure shows as a tensor (torch.save)",
                     metavar="FILE.pt")


def labels(model, label: Optional[int], n: int) -> Optional[torch.Tensor]:
    """(n,) labels all ``label`` for a class-conditional model (None: the model's default cycling), one-line errors
    for a label given to an unconditional model or out of range."""
    if label is None:
        return None
    if not model.conditional:
        raise DgmError("--label needs a class-conditional model (train with --conditional)")
    k = model.config.num_classes
    if not 0 <= label < k:
        raise DgmError(f"--label must be in 0..{k - 1}, got {label}")
    return torch.full((n,), label, dtype=torch.long)


def sample_method(model, naive: bool) -> Dict[str, str]:
    """``{"method": "naive"}`` for --naive on a model that samples element by element, {} for its default; --naive
    on a one-pass sampler is refused."""
    if not naive:
        return {}
    if "naive" not in model.sample_methods:
        raise DgmError(f"--naive is for models that sample element by element (autoregressive); "
                       f"{model.run_config['model']} draws a sample in one pass")
    return {"method": "naive"}


def write_images(model, x: torch.Tensor, out, images: Optional[torch.Tensor] = None, nrow: Optional[int] = None,
                 save_tensor: Optional[str] = None, title: Optional[str] = None) -> List[Path]:
    """Write a figure's images: a grid of ``images`` (default ``x``) on the model's scale, or for 2-D points a scatter
    over the true density and D's surface; ``save_tensor``: also ``x`` as a tensor. Returns the PNG's path."""
    images = x if images is None else images
    with undo_on_failure(out, save_tensor):
        if model.points:
            from ..runs import load_data
            from ..viz.toy import save_points_plot

            data = load_data(model.run_config["data"], "train")
            path = save_points_plot(out, x.cpu(), data, model, title=title or f"{len(x)} samples")
        else:
            from ..viz import save_grid

            path = save_grid(model.to_unit(images), out, nrow)
        if save_tensor:
            save_tensor_file(x.cpu(), save_tensor)
    return [path]


def draw(model, fig: Figure, out, n: Optional[int], seed: int, options: Mapping[str, Any]) -> List[Path]:
    """``fig.make`` with its arguments (what `dgm sample` calls once the figure is resolved). Not enough memory is one
    line naming the figure and its size."""
    from ..errors import allocating

    size = f" (-n {n})" if n is not None else ""
    with allocating(f"drawing the {fig.name} figure{size}", "lower -n" if n is not None else "draw it on a bigger "
                    "machine or from a smaller model"):
        return fig.make(model, Path(out), n, seed, **options)


__all__ = ["Figure", "FIGURES", "MAX_SAMPLES", "register", "figure_options", "readers", "can_make", "choose",
           "resolve", "draw", "undo_on_failure", "labels", "sample_method", "write_images", "LABEL", "NAIVE",
           "SAVE_TENSOR"]
