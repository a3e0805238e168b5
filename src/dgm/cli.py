"""The `dgm` command: parses, calls the library, prints. No logic of its own."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
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

from .errors import DgmError, user_fault

#: the most images `dgm sample` draws into one grid
MAX_SAMPLES = 100_000


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


def _field_comments(config_cls) -> Dict[str, str]:
    """The trailing ``# comment`` of each field in the dataclass sources of ``config_cls`` and its bases (a
    subclass's comment wins), read with ``tokenize`` so that a ``#`` inside a string default is not taken."""
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


def _add_config_options(parser, config_cls, skip=(), group_title: Optional[str] = None):
    """One option per field of ``config_cls``: its help is the field's comment in the source, then its real
    default (None is shown as "none"; the comment says what that means)."""
    group = parser.add_argument_group(group_title) if group_title else parser
    comments = _field_comments(config_cls)
    for f in dataclasses.fields(config_cls):
        if f.name in skip or not f.metadata.get("cli", True):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = _field_type(f)
        default = _field_default(f)
        shown = "none" if default is None else ("on" if default is True else "off" if default is False else default)
        text = f"{comments[f.name]} " if f.name in comments else ""
        text = (text + f"(default: {shown})").replace("%", "%%")
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(flag, type=kind, default=None, help=text)


def _collect(ns, config_cls, skip=()):
    out = {}
    for f in dataclasses.fields(config_cls):
        if f.name in skip:
            continue
        v = getattr(ns, f.name, None)
        if v is not None:
            out[f.name] = v
    return out


def _build_parser(argv: List[str]) -> argparse.ArgumentParser:
    from .models import DATA_FIELDS, MODELS

    p = _Parser(prog="dgm", description="Deep generative models of images: train, sample, evaluate.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model; writes a run directory",
                       description="Train MODEL on a dataset. `dgm train MODEL --help` lists the model's options.")
    _train_arguments(t)
    model_name = _model_name(argv)
    if model_name is not None:
        _add_config_options(t, MODELS.get(model_name).Config, skip=DATA_FIELDS, group_title=f"{model_name} options")
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
                   "on each side (exact, no resampling)")
    t.add_argument("--image-channels", type=int, default=None, choices=[1, 3],
                   help="(images dataset) 1 grey or 3 RGB (default: 3)")
    t.add_argument("--data-dir-b", default=None, help="(pairs dataset) folder of domain Y's images; --data-dir holds "
                   "domain X's (default: none)")
    t.add_argument("--classes", default=None, metavar="A,B", help="(fashion-classes dataset) the two classes to "
                   "translate between, e.g. sneaker,sandal (default: none)")
    t.add_argument("--paired", action="store_true", default=None, help="(fashion-labels, digits-labels) train on the "
                   "true pairs: the supervised upper bound of a translation model (default: off)")
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


def _build_parser_rest(sub) -> None:
    from .sampling import REGIONS

    s = sub.add_parser("sample", help="sample a grid of images from a trained run")
    s.add_argument("run", help="run directory or checkpoint file (.pt)")
    s.add_argument("-n", type=int, default=None, help="number of samples (default 64; audio runs: 4)")
    s.add_argument("--out", default=None, help="PNG file to write (default: RUN/samples/sample-seedS.png; for a "
                   "checkpoint FILE.pt: FILE-sample-seedS.png beside it)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, default=None, dest="label", help="class to sample (conditional models)")
    s.add_argument("--complete-from", default=None, metavar="IMAGE_FILE",
                   help="keep part of this image and sample the rest (n completions)")
    s.add_argument("--observe", default=None, choices=REGIONS, help="which half of --complete-from is kept "
                   "(default: top)")
    s.add_argument("--device", default="cpu")
    s.add_argument("--checkpoint", default="latest", help="latest, best (best validation NLL) or a checkpoint file")
    s.add_argument("--save-tensor", default=None, metavar="FILE.pt", help="also save the samples as a tensor")
    s.add_argument("--naive", action="store_true", help="autoregressive models: run the whole network once per "
                   "pixel (the reference) instead of the default cached sampling; same images, slower")
    s.add_argument("--translate", default=None, metavar="test|FOLDER", help="translation runs (cyclegan): write "
                   "input / translation / reconstruction triplets of both directions for n images of the run's test "
                   "split or of a folder")
    s.add_argument("--interpolate", default=None, choices=["lerp", "slerp"], help="models with a Gaussian latent "
                   "(GANs, VAEs): -n rows of --steps images along a line (lerp) or a great-circle arc (slerp, White "
                   "2016) between two random codes")
    s.add_argument("--steps", type=int, default=None, help="--interpolate: images per row, ends included (default 8)")
    s.add_argument("--truncation", type=float, default=None, metavar="PSI", help="models with a Gaussian latent: the "
                   "truncation trick (interpolate: PSI z, PSI in [0, 1], 1 = ordinary sampling; resample: threshold)")
    s.add_argument("--truncation-mode", default=None, choices=["w-mean", "interpolate", "resample"],
                   help="--truncation: towards the mean latent or resampling of |z_i| > PSI (BigGAN); w-mean: in W "
                   "toward the tracked mean w (stylegan runs) (default: the run's first: w-mean for stylegan, resample "
                   "for biggan, else interpolate)")
    s.add_argument("--style-mix", action="store_true", default=None, help="stylegan runs: the style-mixing grid "
                   "(B sources in the top row; rows of A sources taking B's coarse, middle or fine styles)")
    s.add_argument("--noise-sweep", action="store_true", default=None, help="stylegan runs: stochastic variation "
                   "(rows of one w under several noise draws, then the per-pixel std over 64 draws)")
    s.add_argument("--attention-maps", action="store_true", help="GANs with self-attention (--arch sagan, biggan): "
                   "write where a few query positions of -n (at most 8) samples attend (SAGAN, Figure 1)")
    s.add_argument("--arithmetic", default=None, metavar="A,B", help="models with an encoder (VAEs) on a labelled "
                   "dataset: mean test code of class A minus class B, added at scales 0..2 to -n other test images")
    s.add_argument("--no-ema", action="store_true", help="GANs trained with --ema-decay: sample the raw generator, "
                   "not the EMA of its weights (the default)")
    s.add_argument("--vary-code", type=int, default=None, metavar="I", help="InfoGAN runs: rows = the categorical "
                   "code's values, 10 columns = continuous code I swept from -2 to 2 (one z; Chen et al. 2016, fig. 2)")
    s.add_argument("--seconds", type=float, default=None, help="audio runs: seconds of audio per sample; writes "
                   "n WAV files and a PNG of their waveforms and spectrograms (default: 1)")
    s.add_argument("--plots", action="store_true", help="latent-variable models: also write reconstructions of "
                   "test images and, for a 2-D latent, the decoded manifold and the encoded test set by label")

    e = sub.add_parser("eval", help="evaluate a run or a set of images; prints one JSON object",
                       description="Evaluate a trained run (likelihood, mode coverage, or sample quality of its "
                       "samples), or compare images (--fake) with a dataset (--real).")
    e.add_argument("run", nargs="?", default=None, help="run directory or checkpoint file (.pt); omit with "
                   "--real/--fake")
    from .metrics import METRICS, image_metrics
    from .metrics.evaluate import default_image_metrics

    e.add_argument("--metric", default=None, help=f"metric name(s), comma-separated ({', '.join(METRICS.names())}; "
                   "dgm list metrics; default: nll for likelihood and latent-variable runs, recon for a VQ-VAE, modes "
                   f"for a GAN on 2-D points, {','.join(default_image_metrics())} for an image GAN or --fake)")
    e.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="data split for NLL and for the real images (default: test)")
    e.add_argument("-n", type=int, default=10000, help="samples to draw for image metrics (default 10000)")
    e.add_argument("--features", default=None, help="feature network for "
                   f"{'/'.join(m.name for m in image_metrics() if m.uses_network)} (dgm list features; default: "
                   "dgm's classifier for digits and fashion-mnist, else inception-v3)")
    e.add_argument("--weights", default=None, help="weights file of the feature network (inception-v3: "
                   "pt_inception-2015-12-05-6726825d.pth; or set DGM_INCEPTION_WEIGHTS)")
    e.add_argument("--real", default=None, metavar="DATASET", help="real dataset to compare with (default: the run's)")
    e.add_argument("--fake", default=None, metavar="PATH", help="fake images: a folder of PNG/JPEG or an .npz/.npy "
                   "file (uint8 or floats in [0, 1]) instead of sampling")
    e.add_argument("--data-dir", default=None, help="folder holding the --real dataset's files")
    e.add_argument("--save-samples", default=None, metavar="FILE.npz", help="save the drawn samples (uint8) for reuse "
                   "with --fake")
    e.add_argument("-k", type=int, default=None, dest="k", help="importance samples for the NLL of latent-variable "
                   "models (default 5000; k=1 is the ELBO's one-sample estimate)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--observe", default=None, choices=REGIONS, help="completion metric: the observed half "
                   "(the NLL is of the other half)")
    e.add_argument("--orders-used", type=int, default=None, help="completion metric: how many maximum-context "
                   "orders of an any-order model to average (log-mean-exp; default 1)")
    e.add_argument("--no-cache", action="store_true", help="recompute the real images' features (cache: "
                   "$DGM_CACHE_DIR or ~/.cache/dgm)")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--device", default="cpu")
    e.add_argument("--checkpoint", default="latest", help="latest, best (best validation NLL) or a checkpoint file")
    e.add_argument("--progress", action="store_true", help="show progress bars")
    e.add_argument("--no-ema", action="store_true", help="GANs trained with --ema-decay: evaluate the raw generator, "
                   "not the EMA of its weights (the default)")
    e.add_argument("--per-class", action="store_true", help="class-conditional runs with --metric fid: also the "
                   "intra-class FID (intra_fid, fid_per_class; Miyato & Koyama 2018)")
    e.add_argument("--truncation", type=float, default=None, metavar="PSI", help="models with a Gaussian latent: "
                   "evaluate samples drawn with the truncation trick (as dgm sample --truncation)")
    e.add_argument("--truncation-mode", default=None, choices=["interpolate", "resample"], help="--truncation: "
                   "towards the mean latent (StyleGAN) or resampling of |z_i| > PSI (BigGAN) (default: the model's "
                   "first, interpolate)")

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
    b.add_argument("--jobs", type=int, default=1, help="runs in parallel (one CPU thread each)")
    b.add_argument("--out", default="runs/bench-modes", help="folder for runs, results.json, table and figures")
    b.add_argument("--no-figures", action="store_true")

    li = sub.add_parser("list", help="list registered names")
    li.add_argument("what", choices=["models", "datasets", "metrics", "features", "families", "objectives", "archs",
                                        "orders"])


def _check_seed(seed: int) -> None:
    from .training.config import MAX_SEED

    if not 0 <= seed <= MAX_SEED:
        raise DgmError(f"--seed must be in 0..{MAX_SEED}, got {seed}")


def _check_output(path, flag: str, make_parent: bool = False) -> None:
    """Refuse, before any work is done, an output file whose folder cannot hold it (``make_parent``: missing
    folders are made, as for `dgm sample --out`)."""
    p = Path(path)
    if p.is_dir():
        raise DgmError(f"{flag} {path} is a folder; give a file name")
    folder = p.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise DgmError(f"{flag} {path}: {folder} is a file, not a folder; choose another path")
    if folder != p.parent and not make_parent:
        raise DgmError(f"{flag} {path}: the folder {p.parent} does not exist; create it or choose another path")


@contextlib.contextmanager
def _undo_on_failure(*paths):
    """Remove again the files among ``paths`` (and the folders made for them) that a failing command created,
    so that a failure (a full disk, a refused option) leaves nothing half written."""
    new = [Path(p) for p in paths if p is not None and not Path(p).exists()]
    made = set()
    for p in new:
        d = p.parent
        while not d.exists() and d != d.parent:
            made.add(d)
            d = d.parent
    try:
        yield
    except BaseException:
        for p in new:
            with contextlib.suppress(OSError):
                p.unlink()
        for d in sorted(made, key=lambda d: len(d.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


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
    for key in ("data_dir_b", "classes", "paired"):  # options of the translation datasets (data/pairs.py)
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
    # value), except the resumable ones (length, budgets, device), which replace the saved ones
    summary = train_run(args.model, data_cfg, model_opts, cfg, out=args.out, resume=args.resume, overrides=given,
                        command="dgm " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    if summary["is_main"]:
        nll = f"; {summary['val_summary']}" if summary["val_summary"] else ""
        print(f"done: {summary['steps']} steps in {summary['seconds']:.1f} s ({summary['images_per_sec']:.0f} images/s, "
              f"{summary['world_size']} process(es)){nll}\n"
              f"samples: {summary['samples']}\nrun: {summary['run_dir']}  (evaluate: dgm eval {summary['run_dir']} "
              f"--metric {summary.get('default_metric', 'nll')})")
    from .training.distributed import teardown

    teardown()
    return 0


def _default_out(run, name: str) -> Path:
    """Where `dgm sample` writes without --out: RUN/samples/NAME, or FILE-NAME beside a checkpoint file."""
    run = Path(run)
    return run / "samples" / name if run.is_dir() else run.with_name(f"{run.stem}-{name}")


def _sample(args) -> int:
    import torch

    from . import load
    from .sampling import complete_from_file
    from .viz import save_grid

    from .devices import check_device

    if args.n is not None and not 1 <= args.n <= MAX_SAMPLES:
        raise DgmError(f"-n must be in 1..{MAX_SAMPLES}, got {args.n}")
    _check_seed(args.seed)
    check_device(args.device)
    if args.out is not None:
        _check_output(args.out, "--out", make_parent=True)
    if args.save_tensor is not None:
        _check_output(args.save_tensor, "--save-tensor")
    if args.observe is not None and not args.complete_from:
        raise DgmError("--observe chooses the kept half of --complete-from; give --complete-from IMAGE_FILE or drop "
                       "--observe")
    observe = args.observe or "top"
    latent_flags = [f for f, v in (("--interpolate", args.interpolate), ("--truncation", args.truncation),
                                   ("--arithmetic", args.arithmetic), ("--complete-from", args.complete_from),
                                   ("--vary-code", args.vary_code), ("--style-mix", args.style_mix),
                                   ("--noise-sweep", args.noise_sweep))
                    if v is not None]
    if len(latent_flags) > 1:
        raise DgmError(f"{' and '.join(latent_flags)} each make their own figure; give one of them")
    if args.steps is not None and not args.interpolate:
        raise DgmError("--steps is the length of an --interpolate row; give --interpolate lerp|slerp or drop --steps")
    if args.truncation_mode is not None and args.truncation is None:
        raise DgmError("--truncation-mode needs --truncation PSI")
    if args.arithmetic is not None and not re.fullmatch(r"\d+,\d+", args.arithmetic):
        raise DgmError(f"--arithmetic takes two class labels A,B (e.g. 3,8), got {args.arithmetic!r}")
    model = load(args.run, checkpoint=args.checkpoint, device=args.device, ema=not args.no_ema)
    if model.config.data_kind == "audio":
        if latent_flags and latent_flags[0] != "--complete-from":
            raise DgmError(f"{latent_flags[0]} needs a model with a Gaussian latent (gan, vae, ...); "
                           f"{model.run_config['model']} has none")
        args.n = 4 if args.n is None else args.n
        return _sample_audio(args, model)
    args.n = 64 if args.n is None else args.n
    if args.seconds is not None:
        raise DgmError(f"--seconds is for audio runs; {model.run_config['model']} makes images: drop --seconds")
    if args.plots and "latent" not in model.capabilities:
        raise DgmError(f"--plots needs a latent-variable model (vae, beta-vae); {model.run_config['model']} has "
                       "no encoder")
    if args.naive and model.can_sample and "naive" not in model.sample_methods:
        raise DgmError(f"--naive is for models that sample element by element (autoregressive); "
                       f"{model.run_config['model']} draws a sample in one pass")
    # default: the model's own method (cached where it has caches); a model that cannot sample says so itself
    how = {"method": "naive"} if args.naive and model.sample_methods else {}
    if args.translate is not None or "translate" in model.capabilities:
        return _translate(args, model)
    c = model.config
    y = None
    if args.label is not None:
        if not model.conditional:
            raise DgmError("--label needs a class-conditional model (train with --conditional)")
        if not 0 <= args.label < c.num_classes:
            raise DgmError(f"--label must be in 0..{c.num_classes - 1}, got {args.label}")
        y = torch.full((args.n,), args.label, dtype=torch.long)
    if latent_flags and latent_flags[0] not in ("--complete-from", "--vary-code"):
        flag = latent_flags[0]
        if flag in ("--style-mix", "--noise-sweep"):
            from .sampling.style import style_generator

            style_generator(model, flag)  # a one-line refusal unless this is a stylegan run
        if not model.truncation_modes:
            raise DgmError(f"{flag} needs a model with a Gaussian latent (gan, vae, beta-vae, aae, avb); "
                           f"{model.run_config['model']} has none")
        if model.points and flag != "--truncation":
            raise DgmError(f"{flag} draws a grid of images; this run models 2-D points (use --truncation)")
        if flag == "--arithmetic" and "latent" not in model.capabilities:
            raise DgmError(f"--arithmetic needs an encoder (vae, beta-vae, aae, avb); {model.run_config['model']} has "
                           "none: use dgm.sampling.latent.attribute_vector with the codes of your two sets")
    gen = torch.Generator().manual_seed(args.seed)
    if args.attention_maps:  # SAGAN's figure (dgm.viz.attention)
        if "attention" not in model.capabilities or latent_flags:
            raise DgmError("--attention-maps needs a GAN with self-attention (--arch sagan or biggan) and makes its "
                           f"own figure{' (drop ' + latent_flags[0] + ')' if latent_flags else ''}")
        from .viz.attention import save_attention_maps

        x, beta = model.attention_maps(min(args.n, 8), y=y, generator=gen)
        out = args.out or _default_out(args.run, f"attention-seed{args.seed}.png")
        with _undo_on_failure(out):
            print(save_attention_maps(model.to_unit(x), beta, out))
        return 0
    nrow = None
    if args.style_mix or args.noise_sweep:  # StyleGAN's figures (dgm.sampling.style); other runs: one-line refusal
        from .sampling.style import noise_sweep, style_mixing_grid

        what = "style-mix" if args.style_mix else "noise-sweep"
        x, nrow = style_mixing_grid(model, generator=gen) if args.style_mix else noise_sweep(model, generator=gen)
        images = x
        default = _default_out(args.run, f"{what}-seed{args.seed}.png")
    elif args.interpolate:
        from .sampling.latent import interpolation_grid

        steps = 8 if args.steps is None else args.steps
        x = images = interpolation_grid(model, args.n, steps, args.interpolate, generator=gen, y=y)
        nrow = steps
        default = _default_out(args.run, f"interpolate-{args.interpolate}-seed{args.seed}.png")
    elif args.vary_code is not None:
        from .sampling.codes import STEPS, code_variation_grid

        x = images = code_variation_grid(model, args.vary_code, generator=gen)
        nrow = STEPS
        default = _default_out(args.run, f"vary-code-{args.vary_code}-seed{args.seed}.png")
    elif args.arithmetic:
        from .runs import load_data
        from .sampling.latent import ARITHMETIC_SCALES, class_arithmetic

        a, b = (int(v) for v in args.arithmetic.split(","))
        data = load_data(model.run_config["data"], "test").with_fixed_draw(torch.Generator().manual_seed(args.seed))
        xt, yt = data.tensors()
        x = images = class_arithmetic(model, xt, yt, data.spec.num_classes, a, b, args.n)
        nrow = 1 + len(ARITHMETIC_SCALES)
        default = _default_out(args.run, f"arithmetic-{a}-minus-{b}-seed{args.seed}.png")
    elif args.complete_from:
        if "complete" not in model.capabilities:
            raise DgmError(f"--complete-from needs an autoregressive model; {model.run_config['model']} cannot complete images")
        shown, x = complete_from_file(model, args.complete_from, args.n, observe, y=y, generator=gen, **how)
        images = torch.cat([shown[None].to(x.device), x])
        default = _default_out(args.run, f"completion-{observe}-seed{args.seed}.png")
    elif args.truncation is not None:
        mode = args.truncation_mode or model.truncation_modes[0]
        if mode not in model.truncation_modes:
            raise DgmError(f"--truncation-mode {mode}: this run has {', '.join(model.truncation_modes)}")
        x = images = model.sample(args.n, y=y, generator=gen, truncation=args.truncation, truncation_mode=mode)
        default = _default_out(args.run, f"truncation-{mode}-{args.truncation:g}-seed{args.seed}.png")
    else:
        x = model.sample(args.n, y=y, generator=gen, **how)
        images = x
        default = _default_out(args.run, f"sample-seed{args.seed}.png")
    with _undo_on_failure(args.out or default, args.save_tensor):
        if model.points:  # 2-D points: a scatter over the true density and D's surface
            from .runs import load_data
            from .viz.toy import save_points_plot

            data = load_data(model.run_config["data"], "train")
            path = save_points_plot(args.out or default, x.cpu(), data, model, title=f"{args.n} samples")
        else:
            path = save_grid(model.to_unit(images), args.out or default, nrow)
        if args.save_tensor:
            torch.save(x.cpu(), args.save_tensor)
    print(path)
    if args.plots:
        from .runs import load_data
        from .viz.latent import save_latent_plots

        xt, yt = load_data(model.run_config["data"], "test").tensors()[:2]
        for p in save_latent_plots(model, xt, yt, Path(path).parent).values():
            print(p)
    return 0


def _translate(args, model) -> int:
    """`dgm sample RUN --translate test|FOLDER`: triplet grids of a translation run."""
    from .sampling.translate import save_translation_grids

    name = model.run_config["model"]
    if "translate" not in model.capabilities:
        raise DgmError(f"--translate needs a translation run (cyclegan); {name} draws samples: drop --translate")
    if args.translate is None:
        raise DgmError(f"a {name} run translates images: pass --translate test (its test split) or --translate FOLDER")
    for flag, value in (("--label", args.label), ("--complete-from", args.complete_from), ("--plots", args.plots),
                        ("--save-tensor", args.save_tensor), ("--naive", args.naive),
                        ("--interpolate", args.interpolate), ("--truncation", args.truncation),
                        ("--arithmetic", args.arithmetic), ("--vary-code", args.vary_code),
                        ("--style-mix", args.style_mix), ("--noise-sweep", args.noise_sweep)):
        if value is not None and value is not False:
            raise DgmError(f"{flag} does not apply to a translation run; drop it")
    tag = "test" if args.translate == "test" else Path(args.translate).name
    out = Path(args.out) if args.out else _default_out(args.run, f"translate-{tag}.png")
    base = str(out)[:-4] if str(out).lower().endswith(".png") else str(out)
    with _undo_on_failure(f"{base}-x_to_y.png", f"{base}-y_to_x.png"):
        for path in save_translation_grids(model, args.translate, args.n, out):
            print(path)
    return 0


def _sample_audio(args, model) -> int:
    """`dgm sample` of an audio run: -n WAV files of --seconds each and one PNG of waveforms and spectrograms."""
    import torch

    from .data.audio import levels_to_pcm, write_wav
    from .viz.audio import require_pyplot, save_audio_plot

    for flag, value in (("--complete-from", args.complete_from), ("--observe", args.observe),
                        ("--plots", args.plots)):
        if value:
            raise DgmError(f"{flag} is for image runs; this {model.run_config['model']} run makes audio: drop {flag}")
    seconds = 1.0 if args.seconds is None else args.seconds
    rate = model.config.sample_rate
    length = int(round(seconds * rate))
    if not 1 <= length <= 3600 * rate:
        raise DgmError(f"--seconds must give 1 sample to 1 hour of audio, got {args.seconds}")
    y = None
    if args.label is not None:
        if not model.conditional:
            raise DgmError("--label needs a class-conditional model (train with --conditional)")
        if not 0 <= args.label < model.config.num_classes:
            raise DgmError(f"--label must be in 0..{model.config.num_classes - 1}, got {args.label}")
        y = torch.full((args.n,), args.label, dtype=torch.long)
    require_pyplot()  # before sampling: the PNG is part of the output
    png = Path(args.out or _default_out(args.run, f"sample-seed{args.seed}.png"))
    wavs = [png.with_name(f"{png.stem}-{i}.wav") for i in range(args.n)]
    with _undo_on_failure(png, args.save_tensor, *wavs):
        gen = torch.Generator().manual_seed(args.seed)
        x = model.sample(args.n, length, y=y, generator=gen, method="naive" if args.naive else "cached").cpu()
        pcm = [levels_to_pcm(x[i, 0].numpy()) for i in range(args.n)]
        for path, p in zip(wavs, pcm):
            print(write_wav(path, p, rate))
        print(save_audio_plot(png, pcm, rate))
        if args.save_tensor:
            torch.save(x, args.save_tensor)
    return 0


def _eval(args) -> int:
    from .devices import check_device
    from .metrics import evaluate

    names = [m.strip() for m in args.metric.split(",") if m.strip()] if args.metric else None
    _check_seed(args.seed)
    check_device(args.device)
    if args.save_samples is not None:
        _check_output(args.save_samples, "--save-samples")
    result = evaluate(args.run, names, real=args.real, fake=args.fake, split=args.split, data_dir=args.data_dir,
                      n=args.n, features=args.features, weights=args.weights, batch_size=args.batch_size,
                      seed=args.seed, checkpoint=args.checkpoint, device=args.device, use_cache=not args.no_cache,
                      progress=args.progress, save_samples=args.save_samples, k=args.k,
                      observe=args.observe, orders_used=args.orders_used, ema=not args.no_ema,
                      per_class=args.per_class, truncation=args.truncation, truncation_mode=args.truncation_mode)
    _print_json(result)
    return 0


def _bench(args) -> int:
    from .bench.modes import default_entries, run_benchmark

    entries = default_entries(args.protocol) if args.objectives == "all" else [e.strip() for e in args.objectives.split(",") if e.strip()]
    opts = {k: v for k, v in (("hidden", args.hidden), ("layers", args.layers)) if v is not None}
    for flag, v, low in (("--batch-size", args.batch_size, 1), ("--hidden", args.hidden, 1),
                         ("--layers", args.layers, 1)):  # checked here, before any progress line is printed
        if v is not None and v < low:
            raise DgmError(f"{flag} must be >= {low}, got {v}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DgmError(f"--out {out} is a file; give a folder for the benchmark's runs and results")
    _check_output(out / "results.json", "--out", make_parent=True)
    res = run_benchmark(entries, [d.strip() for d in args.data.split(",") if d.strip()], args.seeds, args.steps,
                        args.out, batch_size=args.batch_size, jobs=args.jobs, model_opts=opts,
                        figure=not args.no_figures, protocol=args.protocol, epochs=args.epochs)
    print(res["table"])
    print(f"\nresults: {Path(args.out) / 'results.json'}")
    return 0


def _list(args) -> int:
    from .data import DATASETS
    from .metrics import FEATURES, METRICS
    from .models import MODELS
    from .models.gan_nets import GAN_ARCHS
    from .objectives import OBJECTIVES
    from .nn.orders import ORDER_FAMILIES
    from .training import STEPS

    reg = {"models": MODELS, "datasets": DATASETS, "metrics": METRICS, "features": FEATURES, "families": STEPS,
           "objectives": OBJECTIVES, "archs": GAN_ARCHS, "orders": ORDER_FAMILIES}[args.what]
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
