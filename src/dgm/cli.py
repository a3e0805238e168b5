"""The `dgm` command: parses, calls the library, prints. No logic of its own."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import inspect
import io
import json
import math
import re
import shlex
import sys
import textwrap
import tokenize
import typing
from pathlib import Path
from typing import Dict, List, Optional

from . import threads
from .errors import DgmError, user_fault
from .outputs import check_output as _check_output, undo_on_failure as _undo_on_failure  # noqa: F401



class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as one-line DgmErrors."""

    def error(self, message):
        raise DgmError(f"{message} (see `{self.prog} --help`)")


def _field_type(f: dataclasses.Field):
    t = f.type
    if isinstance(t, str):
        t = {"int": int, "float": float, "bool": bool, "str": str}.get(t.replace("Optional[", "").rstrip("]"), str)
    args = [a for a in typing.get_args(t) if a is not type(None)]
    return args[0] if args else t


@functools.lru_cache(maxsize=None)
def _field_comments(config_cls) -> Dict[str, str]:
    """The trailing ``# comment`` of each field in the dataclass sources of ``config_cls`` and its bases (a
    subclass's comment wins), read with ``tokenize`` so that a ``#`` inside a string default is not taken. Cached
    per class: reading the sources is most of the time it takes to build `dgm train gan`'s parser (0.8 s a call)."""
    out: Dict[str, str] = {}
    for klass in reversed([k for k in config_cls.__mro__ if dataclasses.is_dataclass(k)]):
        try:
            lines, _ = inspect.getsourcelines(klass)
        except (OSError, TypeError):
            continue
        comments = {}
        with contextlib.suppress(tokenize.TokenError, IndentationError):
            for tok in tokenize.generate_tokens(io.StringIO(textwrap.dedent("".join(lines))).readline):
                if tok.type == tokenize.COMMENT:
                    comments[tok.start[0]] = tok.string.lstrip("#").strip()
        for i, line in enumerate(lines, 1):
            m = re.match(r"\s+(\w+)\s*:", line)
            if m and i in comments and m.group(1) in klass.__dataclass_fields__:
                out[m.group(1)] = comments[i]
    return out


def _field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _field_groups(config_cls, given: Dict) -> list:
    """The option groups of the parts a config composes (``part_options.OptionGroup``s, from the ``options`` metadata
    of its fields, e.g. GANConfig's objective, architecture and regularisers), for the options ``given`` so far."""
    return [g for f in dataclasses.fields(config_cls) if "options" in f.metadata for g in f.metadata["options"](given)]


def _add_config_options(parser, config_cls, skip=(), group_title: Optional[str] = None, given: Optional[Dict] = None):
    """One option per field of ``config_cls``: its help is the field's comment in the source, then its real
    default (None is shown as "none"; the comment says what that means). A config composing parts adds each part's
    options in a group of its own: those of the parts that the options ``given`` select are shown, the others' are
    accepted but hidden (the config refuses them by name) and listed in the epilog."""
    def add(group, cls, hide=False):
        comments = _field_comments(cls)
        for f in dataclasses.fields(cls):
            if f.name in skip or not f.metadata.get("cli", True) or f.name in added:
                continue
            added.add(f.name)
            flag = "--" + f.name.replace("_", "-")
            kind = _field_type(f)
            default = _field_default(f)
            shown = "none" if default is None else ("on" if default is True else "off" if default is False else default)
            text = f"{comments[f.name]} " if f.name in comments else ""
            text = (text + f"(default: {shown})").replace("%", "%%")
            if kind is bool:
                action = group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
            else:
                action = group.add_argument(flag, type=kind, default=None, help=text)
            action.hidden = hide  # left out of --help by _TrainHelp (accepted, with its help for the other parts)

    added: set = set()
    add(parser.add_argument_group(group_title) if group_title else parser, config_cls)
    groups = _field_groups(config_cls, given or {})
    for g in groups:
        if g.shown:
            add(parser.add_argument_group(g.title), g.options)
    others = [g for g in groups if not g.shown]
    for g in others:
        add(parser, g.options, hide=True)
    if others:
        parts = "; ".join(f"{g.how}: {' '.join('--' + n.replace('_', '-') for n in g.options.__dataclass_fields__)}"
                          for g in others)
        parser.epilog = ("The options of the parts not selected here (each part's are shown with it, e.g. "
                         f"`{others[-1].how} --help`; a run that does not use a part refuses its options): {parts}."
                         ).replace("%", "%%")


def _collect(ns, config_cls, skip=()):
    out = {}
    classes = [config_cls] + [g.options for g in _field_groups(config_cls, {})]
    for f in (f for cls in classes for f in dataclasses.fields(cls)):
        if f.name in skip:
            continue
        v = getattr(ns, f.name, None)
        if v is not None:
            out[f.name] = v
    return out


class _TrainHelp(argparse.HelpFormatter):
    """`dgm train MODEL --help` without the options marked ``hidden`` (those of parts the run does not use)."""

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, [a for a in actions if not getattr(a, "hidden", False)], groups, prefix)

    def add_argument(self, action):
        if not getattr(action, "hidden", False):
            super().add_argument(action)


def _build_parser(argv: List[str]) -> argparse.ArgumentParser:
    from .models import DATA_FIELDS, MODELS

    p = _Parser(prog="dgm", description="Deep generative models of images: train, sample, evaluate.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model; writes a run directory", formatter_class=_TrainHelp,
                       description="Train MODEL on a dataset. `dgm train MODEL --help` lists the model's options.")
    _train_arguments(t)
    model_name = _model_name(argv)
    if model_name is not None:
        config_cls = MODELS.get(model_name).Config
        first = _Parser(prog="dgm train", add_help=False)  # the options given, for the parts they select
        _train_arguments(first)
        _add_config_options(first, config_cls, skip=DATA_FIELDS)
        try:
            given = _collect(first.parse_known_args([a for a in argv if a != "--debug"][1:])[0], config_cls)
        except DgmError:
            given = {}  # the real parse below says what is wrong
        _add_config_options(t, config_cls, skip=DATA_FIELDS, group_title=f"{model_name} options", given=given)
    _build_parser_rest(sub)
    return p


def _train_arguments(t) -> None:
    """The options of `dgm train` that every model has (the model's own come from its Config)."""
    from .training import TrainConfig

    t.add_argument("model", help="model name (dgm list models; no default)")
    t.add_argument("--data", default=None, help="dataset name (dgm list datasets; default: digits)")
    t.add_argument("--data-dir", default=None, help="folder holding the dataset's files (default: none; "
                   "fashion-mnist: its installed copy; digits ships with scikit-learn)")
    t.add_argument("--binarize", nargs="?", const="fixed", default=None, choices=["fixed", "dynamic"],
                   help="binarize images: fixed threshold at half range (when given alone) or dynamic (Bernoulli) "
                   "(default: off)")
    t.add_argument("--quantize", type=int, default=None, dest="quantize", metavar="K",
                   help="quantise images to K grey levels (default: the dataset's own levels)")
    t.add_argument("--image-size", type=int, default=None, help="(images dataset) resize to this size (default: "
                   "none: all images must have one size); (mnist, fashion-mnist) 32: zero-pad the 28x28 images by 2 px "
                   "on each side (exact, no resampling); (shapes) 64 (default) or 32: the size the sprites are drawn "
                   "at")
    t.add_argument("--image-channels", type=int, default=None, choices=[1, 3],
                   help="(images dataset) 1 grey or 3 RGB (default: 3)")
    t.add_argument("--data-dir-b", default=None, help="(pairs dataset) folder of domain Y's images; --data-dir holds "
                   "domain X's (default: none)")
    t.add_argument("--classes", default=None, metavar="A,B", help="(fashion-classes dataset) the two classes to "
                   "translate between, e.g. sneaker,sandal (default: none)")
    t.add_argument("--paired", action="store_true", default=None, help="(fashion-labels, digits-labels) train on the "
                   "true pairs: the supervised upper bound of a translation model (default: off)")
    t.add_argument("--rotation", type=float, default=None, metavar="DEGREES", help="(moons:moons-rotated) the "
                   "target's rotation about the moons' centre (default: 30)")
    t.add_argument("--window", type=int, default=None, help="(audio datasets) training window in samples "
                   "(default: 4000 for speech and audio, 500 for tones)")
    t.add_argument("--sample-rate", type=int, default=None, metavar="HZ", help="(speech, audio) resample every "
                   "file to HZ with scipy's polyphase filter (default: none; the folder's files must share one rate)")
    t.add_argument("--out", default=None, help="run directory (default: runs/MODEL-DATA[-N])")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint "
                   "(default: off)")
    t.add_argument("--from", default=None, dest="from_run", metavar="RUN",
                   help="models fitted to another run (vq-vae-prior: the trained VQ-VAE run whose code maps the prior "
                   "models); its data is used (default: none)")
    _add_config_options(t, TrainConfig, group_title="training")


def _model_name(argv: List[str]) -> Optional[str]:
    """The MODEL of `dgm [--debug] train ... MODEL ...` wherever it stands, so that its options parse in any order.

    A first pass parses the options every model shares and leaves the model's own aside; if that pass takes a
    value of an unknown option for MODEL, the first registered model name among the words is used.
    """
    from .models import MODELS

    words = [a for a in argv if a != "--debug"]
    if not words or words[0] != "train":
        return None
    first = _Parser(prog="dgm train", add_help=False)
    _train_arguments(first)
    try:
        name = first.parse_known_args(words[1:])[0].model
    except DgmError:
        name = None
    if name in MODELS.names():
        return name
    return next((w for w in words[1:] if w in MODELS.names()), None)


def _run_options(p, verb: str, files: str, networks: str, pays: str) -> None:
    """The options that `dgm sample` and `dgm eval` share: --no-ema, --force, --threads, --compile."""
    p.add_argument("--no-ema", action="store_true", help=f"GANs trained with --ema-decay: {verb} the raw generator, "
                   "not the EMA of its weights (the default)")
    p.add_argument("--force", action="store_true", help=f"replace an existing {files} file that dgm did not write "
                   "(default: refused; files dgm wrote are replaced)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: a fair share of the cores "
                   "among the running dgm processes, at least 1)")
    p.add_argument("--compile", action="store_true", help=f"torch.compile {networks} after 10-50 s of compiling on a "
                   "CPU; measured there (benchmarks/amp_compile.py): an autoregressive forward 2.1-2.4x, a DCGAN's G "
                   f"1.2-1.8x, a small VAE 0.5-0.7x the eager speed. {pays}; eager with a one-line warning where "
                   "compiling fails (default: off)")


def _build_parser_rest(sub) -> None:
    from .figures import FIGURES, figure_options
    from .figures.registry import readers

    s = sub.add_parser("sample", help="draw a figure of a trained run (default: its samples)",
                       description="Draw a figure of a trained run: --figure NAME (dgm list figures), or a figure's own "
                       "flag (e.g. --interpolate slerp); without either, the model's default figure (samples; vq-vae: "
                       "reconstructions; cyclegan: translations; wavenet: audio).")
    s.add_argument("run", help="run directory or checkpoint file (.pt)")
    s.add_argument("--figure", default=None, help=f"the figure to draw ({', '.join(FIGURES.names())}; dgm list "
                   "figures; default: the model's own)")
    s.add_argument("-n", type=int, default=None, help="how many samples the figure draws (default: the figure's: 64 "
                   "samples, 8 interpolation rows, 4 sounds, ...)")
    s.add_argument("--out", default=None, help="PNG file to write (default: RUN/samples/FIGURE-seedS.png; for a "
                   "checkpoint FILE.pt: FILE-FIGURE-seedS.png beside it)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--checkpoint", default="latest", help="latest, best (best validation NLL) or a checkpoint file")
    _run_options(s, "sample", "--out or --save-tensor", "the model's networks (an autoregressive model's forward, a "
                 "GAN's G, a VAE's decoder)", "It pays for --naive sampling of many images, not for cached "
                 "autoregressive sampling (the default), whose pixel-by-pixel loop of small per-layer updates stays "
                 "eager")
    group = s.add_argument_group("figure options", "each read by the figures named in brackets")
    owners = readers()
    for name, option in figure_options().items():
        option.add_to(group, f" [{', '.join(owners[name])}]")

    e = sub.add_parser("eval", help="evaluate a run or a set of images; prints one JSON object",
                       description="Evaluate a trained run (likelihood, mode coverage, or sample quality of its "
                       "samples), or compare images (--fake) with a dataset (--real).")
    e.add_argument("run", nargs="?", default=None, help="run directory or checkpoint file (.pt); omit with "
                   "--real/--fake")
    from .metrics import METRICS
    from .metrics.evaluate import default_image_metrics
    from .metrics.registry import metric_options, option_readers

    e.add_argument("--metric", default=None, help=f"metric name(s), comma-separated ({', '.join(METRICS.names())}; "
                   "dgm list metrics; default: nll for likelihood and latent-variable runs, recon for a VQ-VAE or "
                   "dVAE, retrieval for clip, modes for a GAN on 2-D points, "
                   f"{','.join(default_image_metrics())} for an image GAN or --fake)")
    e.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="data split for NLL and for the real images (default: test)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--device", default="cpu")
    e.add_argument("--checkpoint", default="latest", help="latest, best (best validation NLL) or a checkpoint file")
    e.add_argument("--progress", action="store_true", help="show progress bars")
    _run_options(e, "evaluate", "--save-samples", "the run's networks (an autoregressive model's forward, a VAE's "
                 "encoder and decoder, a GAN's G; not the metrics' feature network)", "It pays for the NLL of "
                 "autoregressive models on large test sets")
    group = e.add_argument_group("metric options", "each read by the metrics named in brackets (image: every image "
                                 "metric)")
    owners = option_readers()
    images = {m.name for m in METRICS.values() if m.needs != "run"}
    for name, option in metric_options().items():
        who = "image" if set(owners[name]) == images else ", ".join(owners[name])
        option.add_to(group, f" [{who}]")

    b = sub.add_parser("bench", help="benchmarks: `dgm bench modes` (mode collapse on toy mixtures)")
    b.add_argument("what", choices=["modes"])
    b.add_argument("--objectives", default="all", help="comma-separated entries: objectives (dgm list objectives), "
                   "remedies on the non-saturating GAN (unrolled-5, pacgan2, pacgan3, pacgan4, minibatch-disc, mbstd, "
                   "ema: G's weight average, decay 0.999; gdpp: GDPP's diversity loss, weight 1) "
                   "or combinations joined by + (pacgan2+mbstd); +g-steps counts the entry's --steps in generator steps "
                   "(wgan-gp+g-steps: --steps x n_critic D updates); default: all (objectives + unrolled-5; with "
                   "--protocol: the classic losses and every remedy)")
    b.add_argument("--protocol", default=None, choices=["veegan", "pacgan"], help="published networks, optimiser "
                   "and length (veegan: setting A, 25k updates; pacgan: setting B, 400 epochs), beside their "
                   "published rows (default: none, dgm's MLPs)")
    b.add_argument("--data", default="ring8,grid25", help="toy mixtures (default: ring8,grid25)")
    b.add_argument("--seeds", type=int, default=5)
    b.add_argument("--steps", type=int, default=None, help="discriminator updates per run (default: the protocol's, "
                   "else 3000)")
    b.add_argument("--epochs", type=float, default=None, help="--protocol pacgan: epochs of 1,000 updates (its "
                   "full length: 400)")
    b.add_argument("--batch-size", type=int, default=None, help="D inputs (packs with packing) per update "
                   "(default: the protocol's, else 256)")
    b.add_argument("--hidden", type=int, default=None, help="MLP width (default: the protocol's, else 256)")
    b.add_argument("--layers", type=int, default=None, help="MLP hidden layers (default: the protocol's, else 3)")
    b.add_argument("--jobs", type=int, default=1, help="runs in parallel (each with --threads CPU threads)")
    b.add_argument("--threads", type=int, default=1, help="CPU threads of each run (default: 1; a bench's rows are "
                   "repeatable bit for bit at the same count; --jobs times --threads should not exceed the cores)")
    b.add_argument("--out", default="runs/bench-modes", help="folder for runs, results.json, table and figures")
    b.add_argument("--no-figures", action="store_true")

    li = sub.add_parser("list", help="list registered names")
    li.add_argument("what", choices=["models", "datasets", "metrics", "features", "families", "objectives", "archs",
                                        "orders", "figures", "regularisers"])


def _check_seed(seed: int) -> None:
    from .training.config import MAX_SEED

    if not 0 <= seed <= MAX_SEED:
        raise DgmError(f"--seed must be in 0..{MAX_SEED}, got {seed}")


def _print_json(obj) -> None:
    """Print strict JSON (no NaN/Infinity tokens, which strict parsers reject)."""
    try:
        text = json.dumps(obj, allow_nan=False)
    except ValueError:
        bad = [k for k, v in obj.items() if isinstance(v, float) and not math.isfinite(v)] if isinstance(obj, dict) \
            else []
        raise DgmError(f"the result holds a non-finite number{' in ' + ', '.join(bad) if bad else ''}, which is not "
                       "valid JSON; this is a bug: rerun with --debug and report it") from None
    print(text)


def _train(args) -> int:
    from .models import MODELS, DATA_FIELDS
    from .training import TrainConfig
    from .training.run import train_run

    cls = MODELS.get(args.model)
    options = {}
    if args.image_size is not None:
        options["image_size"] = args.image_size
    if args.image_channels is not None:
        options["channels"] = args.image_channels
    for key in ("data_dir_b", "classes", "paired", "rotation"):  # options of the translation datasets (data/pairs.py)
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.window is not None:
        options["window"] = args.window
    if args.sample_rate is not None:
        options["sample_rate"] = args.sample_rate
    data = args.data if args.data is not None or args.resume else "digits"  # --resume: None = the saved data
    data_cfg = {"name": data, "data_dir": args.data_dir, "binarize": args.binarize, "levels": args.quantize,
                "scale": "levels", "options": options}
    given = _collect(args, TrainConfig)
    model_opts = _collect(args, cls.Config, skip=DATA_FIELDS)
    if model_opts.get("protocol") and not args.resume:  # a toy-mixture preset fills defaults; given flags win
        from .bench.protocols import apply

        model_opts, given = apply(model_opts["protocol"], data, model_opts, given)
    cfg = TrainConfig.from_dict(given)
    if "device" in given:
        from .devices import check_device

        check_device(cfg.device, auto=True)
    if not args.resume:
        cls.Config.refuse_unused(model_opts)
    if args.from_run is not None:
        from .runs import source_run

        source_data, taken = source_run(cls, args.model, args.from_run)
        model_opts.update(taken)
        if not args.resume:
            data_cfg = source_data
    # --resume: the options given must agree with the saved run (train_run refuses a difference, naming the saved
    # value), except the resumable ones (length, budgets, device, threads, --compile), which replace the saved ones
    summary = train_run(args.model, data_cfg, model_opts, cfg, out=args.out, resume=args.resume, overrides=given,
                        command="dgm " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    if summary["is_main"]:
        nll = f"; {summary['val_summary']}" if summary["val_summary"] else ""
        print(f"done: {summary['steps']} steps in {summary['seconds']:.1f} s ({summary['images_per_sec']:.0f} images/s, "
              f"{summary['world_size']} process(es)){nll}\n"
              f"samples: {summary['samples'] or 'none (this model draws no sample grid: dgm sample RUN)'}\n"
              f"run: {summary['run_dir']}  (evaluate: dgm eval {summary['run_dir']} "
              f"--metric {summary.get('default_metric', 'nll')})")
    from .training.distributed import teardown

    teardown()
    return 0


def _default_out(run, name: str) -> Path:
    """Where `dgm sample` writes without --out: RUN/samples/NAME, or FILE-NAME beside a checkpoint file."""
    run = Path(run)
    return run / "samples" / name if run.is_dir() else run.with_name(f"{run.stem}-{name}")


def _sample(args) -> int:
    """`dgm sample`: the figure named by --figure or by its own flag (default: the model's), drawn by the figures
    registry (``dgm.figures``)."""
    from . import load
    from .devices import check_device
    from .figures import choose, draw, figure_options, resolve
    from .figures.registry import check_given

    _check_seed(args.seed)
    check_device(args.device)
    given = {name: getattr(args, name) for name in figure_options()}
    if args.force and args.out is None and given.get("save_tensor") is None:
        raise DgmError("--force replaces an existing --out or --save-tensor file; give one of them or drop --force")
    if args.out is not None:
        _check_output(args.out, "--out", make_parent=True, inputs=(args.run, args.checkpoint), force=args.force)
        _check_image_suffix(args.out)
    if given.get("save_tensor") is not None:
        _check_output(given["save_tensor"], "--save-tensor", inputs=(args.run, args.checkpoint), force=args.force)
    name = choose(given, args.figure)
    check_given(given, name)  # before loading: options the figure does not read
    with threads.using(args.threads):
        model = load(args.run, checkpoint=args.checkpoint, device=args.device, ema=not args.no_ema)
        if args.compile:
            from .compiling import compile_model

            compile_model(model)
        fig, options, n = resolve(model, name, given, args.n, by_flag=args.figure is None)
        out = Path(args.out) if args.out else _default_out(args.run, fig.file(model, args.seed, options))
        for path in draw(model, fig, out, n, args.seed, options):
            print(path)
    return 0


def _check_image_suffix(out: str) -> None:
    """`dgm sample --out` names an image file whose suffix says its format (PNG, JPEG, ...): refuse, before any work,
    a suffix that no image writer knows (it failed after the drawing, with a traceback)."""
    from PIL import Image

    Image.init()
    suffix = Path(out).suffix.lower()
    if Image.registered_extensions().get(suffix) not in Image.SAVE:
        raise DgmError(f"--out {out}: {'no suffix' if not suffix else repr(suffix)} names no image format dgm can "
                       "write; end the name in .png (or .jpg, .tif, .webp)")


def _eval(args) -> int:
    from .devices import check_device
    from .metrics import evaluate
    from .metrics.registry import metric_options

    names = [m.strip() for m in args.metric.split(",") if m.strip()] if args.metric else None
    _check_seed(args.seed)
    check_device(args.device)
    if args.force and args.save_samples is None:
        raise DgmError("--force replaces an existing --save-samples file; give --save-samples FILE or drop --force")
    if args.save_samples is not None:
        _check_output(args.save_samples, "--save-samples", inputs=(args.run, args.checkpoint, args.fake),
                      force=args.force)
    options = {name: getattr(args, name) for name in metric_options()}
    options.update(split=args.split, batch_size=args.batch_size, seed=args.seed, checkpoint=args.checkpoint,
                   device=args.device, progress=args.progress, ema=not args.no_ema, compile=args.compile)
    with threads.using(args.threads):
        result = evaluate(args.run, names, options)
    _print_json(result)
    return 0


def _bench(args) -> int:
    from .bench.modes import default_entries, run_benchmark

    entries = default_entries(args.protocol) if args.objectives == "all" else \
        [e.strip() for e in args.objectives.split(",") if e.strip()]
    if not entries:
        raise DgmError(f"--objectives {args.objectives!r} names no objective; give one or more, comma-separated (dgm "
                       "list objectives), or 'all'")
    opts = {k: v for k, v in (("hidden", args.hidden), ("layers", args.layers)) if v is not None}
    for flag, v, low in (("--batch-size", args.batch_size, 1), ("--hidden", args.hidden, 1),
                         ("--layers", args.layers, 1), ("--threads", args.threads, 1)):  # checked here, before any progress line is printed
        if v is not None and v < low:
            raise DgmError(f"{flag} must be >= {low}, got {v}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DgmError(f"--out {out} is a file; give a folder for the benchmark's runs and results")
    _check_output(out / "results.json", "--out", make_parent=True)
    from .lock import run_lock

    made = not out.exists()
    try:
        with run_lock(out):  # one bench writes a folder's rows and results at a time
            res = run_benchmark(entries, [d.strip() for d in args.data.split(",") if d.strip()], args.seeds,
                                args.steps, args.out, batch_size=args.batch_size, jobs=args.jobs, model_opts=opts,
                                figure=not args.no_figures, protocol=args.protocol, epochs=args.epochs,
                                threads=args.threads)
    except BaseException:
        if made and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a bench refused before it wrote leaves no empty folder behind
        raise
    print(res["table"])
    print(f"\nresults: {Path(args.out) / 'results.json'}")
    return 0


def _list(args) -> int:
    from .data import DATASETS
    from .metrics import FEATURES, METRICS
    from .models import MODELS
    from .models.gan_nets import GAN_ARCHS
    from .models.gan_regularisers import REGULARISERS
    from .objectives import OBJECTIVES
    from .nn.orders import ORDER_FAMILIES
    from .training import STEPS

    if args.what == "figures":  # with what each needs of a model
        from .figures import FIGURES

        width = max(len(n) for n in FIGURES.names())
        for name in FIGURES.names():
            fig = FIGURES.get(name)
            print(f"{name:<{width}}  {fig.help} [needs: {', '.join(fig.needs)}]")
        return 0
    reg = {"models": MODELS, "datasets": DATASETS, "metrics": METRICS, "features": FEATURES, "families": STEPS,
           "objectives": OBJECTIVES, "archs": GAN_ARCHS, "orders": ORDER_FAMILIES, "regularisers": REGULARISERS}[args.what]
    width = max(len(n) for n in reg.names())
    for name in reg.names():
        print(f"{name:<{width}}  {reg.help(name)}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = _build_parser(argv).parse_args(argv)
        return {"train": _train, "sample": _sample, "eval": _eval, "bench": _bench, "list": _list}[args.command](args)
    except KeyboardInterrupt:
        print("dgm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output left (`dgm eval RUN | head`): end quietly, as other tools do
        import os

        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 141
    except Exception as exc:  # noqa: BLE001 -- what a user can cause becomes one line; anything else is a bug
        err = user_fault(exc)
        if err is None or debug:
            raise
        print(f"dgm: error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
