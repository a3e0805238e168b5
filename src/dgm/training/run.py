"""Train (or resume) a run: data, model, step and engine put together; the run directory itself is ``dgm.runs``.

One process writes a run folder at a time (``dgm.lock``); without ``--out`` a fresh ``runs/MODEL-DATA[-N]`` is
chosen and locked in one step. What a new run does with a folder that exists already:

- it holds a checkpoint: refused (``--resume`` continues it);
- it holds a run that stopped before its first checkpoint (config.json but no ``ckpt-*.pt``: a NaN in the
  first steps, a kill): the new run starts there, and the earlier attempt's files (config, metrics, TensorBoard
  events, samples, a ``best.pt``) move to ``RUN/attempts/N/`` -- nothing is deleted;
- a new run that fails having written nothing but its config.json (a NaN at step 2, a full disk) takes that
  file back (and returns a moved attempt), so the folder is as it was; one that wrote logs keeps them.

``--resume`` continues the saved config: a different model, data flag or option is refused with the saved
value; only the ``RESUMABLE`` options (length, budgets, device, threads, --compile, progress bar) change. The
command of each resume is appended to ``commands`` in config.json; ``command`` stays the first one.
"""
from __future__ import annotations

import contextlib
import errno
import uuid
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch

from .. import checkpoint as ckpt
from .. import threads
from .._version import __version__
from ..data import DATASETS, ImageDataset
from ..errors import DgmError
from ..lock import LOCK_NAME, claim_new, is_main_rank, run_lock
from ..models import DATA_FIELDS, MODELS, build_model
from ..runs import CONFIG, identity, load, load_data, read_run_config, write_json
from .config import TrainConfig
from .distributed import setup
from .engine import Trainer, seed_everything
from .steps import STEPS

#: training options a resume may change; any other option given with --resume must equal the saved value
RESUMABLE = ("steps", "epochs", "max_minutes", "max_cpu_minutes", "progress", "device", "threads", "compile")
_DATA_FLAGS = {"name": "--data", "data_dir": "--data-dir", "binarize": "--binarize", "levels": "--quantize"}
_OPTION_FLAGS = {"image_size": "--image-size", "channels": "--image-channels"}
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
ATTEMPTS = "attempts"


def _holds_run(path: Path) -> bool:
    return (path / CONFIG).exists()


def _first_free(base: Path) -> Path:
    """The first of BASE, BASE-2, ... without a run (other DDP ranks: rank 0 locks what it picks)."""
    path, k = base, 1
    while _holds_run(path):
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


@contextlib.contextmanager
def _claimed(out: Optional[str], base: Path) -> Iterator[Path]:
    """The run folder, held under its writer lock for the block (``out``, or a fresh one chosen under lock)."""
    if out:
        with run_lock(out):
            yield Path(out)
    elif not is_main_rank():
        yield _first_free(base)
    else:
        lock = claim_new(base, taken=_holds_run)
        try:
            yield lock.run_dir
        finally:
            lock.release()


def train_run(model_name: str, data_cfg: Dict[str, Any], model_opts: Dict[str, Any], train_cfg: TrainConfig,
              out: Optional[str] = None, resume: bool = False, overrides: Optional[Dict[str, Any]] = None,
              command: str = "") -> Dict[str, Any]:
    """Train (or resume) a run; returns the engine's summary plus the run directory.

    With ``resume``, ``out`` names the run to continue and its saved config is used: ``model_name`` must be the
    saved model, and every field of ``data_cfg``, ``model_opts`` and ``overrides`` that is not None must equal
    the saved value, except the ``RESUMABLE`` options in ``overrides``, which replace the saved ones.
    """
    if resume and not out:
        raise DgmError("--resume needs --out DIR naming the run to continue")
    MODELS.get(model_name)  # unknown name: a clear error before any folder is claimed
    if resume:
        read_run_config(out)  # not a run: a clear error before a lock is taken (nothing is created)
    before = torch.get_num_threads()
    try:
        with _claimed(out, Path("runs") / f"{model_name}-{data_cfg.get('name')}") as run_dir:
            return _train_in(run_dir, model_name, data_cfg, model_opts, train_cfg, resume, overrides or {}, command)
    finally:
        threads.release(before)  # the caller's thread count again (a library call leaves no global change)


def _train_in(run_dir: Path, model_name: str, data_cfg: Dict[str, Any], model_opts: Dict[str, Any],
              train_cfg: TrainConfig, resume: bool, overrides: Dict[str, Any], command: str) -> Dict[str, Any]:
    history, run_id = [command], uuid.uuid4().hex  # the run's random id: its checkpoints carry it (dgm.runs.identity)
    if resume:
        saved = read_run_config(run_dir)  # again, now that no other process can change it
        _check_resume(saved, run_dir, model_name, data_cfg, model_opts, overrides)
        data_cfg, model_opts = saved["data"], saved["model_config"]
        train_cfg = TrainConfig.from_dict({**saved["train"], **{k: v for k, v in overrides.items() if k in RESUMABLE}})
        first = saved.get("command", "")
        history = [*(saved.get("commands") or [first]), command]
        run_id = saved.get("run_id") or run_id  # a run saved before run ids gets one now
    cls = MODELS.get(model_name)
    if "domains" in cls.data_kinds:  # SOURCE:TARGET: a plain dataset or an unknown target is one line
        from ..data.domains import check_domain_name

        check_domain_name(data_cfg["name"])
    audio = bool(getattr(DATASETS.get(data_cfg["name"]), "is_audio", False))
    if audio != ("audio" in cls.data_kinds):
        need = "audio data (dgm list datasets: speech, audio, tones)" if not audio else "image data"
        raise DgmError(f"model {model_name} needs {need}; {data_cfg['name']} is "
                       f"{'an audio' if audio else 'not an audio'} dataset")
    if not resume and cls.input_scale == "pm1" and not getattr(DATASETS.get(data_cfg["name"]), "is_toy", False):
        data_cfg = {**data_cfg, "scale": "pm1"}
    if not resume and ckpt.list_checkpoints(run_dir):
        raise DgmError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    train_cfg.validate()
    if train_cfg.threads is not None:  # --threads N (stored: a resume computes with as many threads)
        threads.apply(train_cfg.threads)
    else:  # the fair share of the cores among the dgm processes, followed during training (dgm.threads)
        threads.apply(threads.default_threads()[0], adaptive=True)
    info = setup(train_cfg.device)
    train_set = load_data(data_cfg, "train")
    val_set = load_data(data_cfg, "val")
    pairs = getattr(train_set, "data_kind", None) == "pairs"
    if pairs != ("pairs" in cls.data_kinds):
        raise DgmError(_pairs_mismatch(model_name, data_cfg["name"], pairs))
    domains = getattr(train_set, "data_kind", None) == "domains"
    if domains != ("domains" in cls.data_kinds):
        raise DgmError(f"{data_cfg['name']} is a domain-adaptation pair (source and target) for the adapt model; "
                       f"{model_name} models one domain: train it on a dataset such as digits")
    if pairs or domains:  # two image domains (data/pairs.py): their shape and both domains' levels
        spec = train_set.model_fields()
    elif audio:  # waveforms of mu-law levels, trained on windows of `window` samples
        spec = {"data_kind": "audio", "channels": 1, "height": 1, "width": train_set.window, "levels": 256,
                "num_classes": train_set.num_classes, "sample_rate": train_set.rate}
    elif isinstance(train_set, ImageDataset):
        spec = {"data_kind": "images", **{k: getattr(train_set.spec, k) for k in DATA_FIELDS if k != "data_kind"}}
        captioned = hasattr(train_set, "with_text")
        if not captioned and "captioned" in cls.data_kinds and "images" not in cls.data_kinds:
            names = ", ".join(n for n in DATASETS.names() if getattr(DATASETS.get(n), "captioned", False))
            raise DgmError(f"model {model_name} needs captioned images ({names}); {data_cfg['name']} has no captions")
        if captioned and "captioned" in cls.data_kinds:  # a text model: its tokenizer's words from the train captions
            spec = {**spec, "data_kind": "captioned", **train_set.text_fields()}
    elif "points" in cls.data_kinds:  # vectors of real numbers: no levels, no image shape
        spec = {"data_kind": "points", "channels": train_set.dim, "height": 1, "width": 1, "levels": 0,
                "num_classes": 0}
    else:
        raise DgmError(f"model {model_name} needs image data; {data_cfg['name']} is a toy point dataset "
                       f"(train a gan on it: dgm train gan --data {data_cfg['name']})")
    if not resume:
        model_opts = {**model_opts, **spec}
    seed_everything(train_cfg.seed)
    model = build_model(model_name, model_opts, source=str(run_dir / CONFIG) if resume else None)
    if not resume and cls.source_run is not None:  # e.g. a prior copies its frozen VQ-VAE's weights
        model.init_from_sources(load)
    if info.is_main and model.start_note():
        print(f"dgm: note: {model.start_note()}", file=sys.stderr)
    if model.config.data_kind == "captioned":  # batches of (image, token ids of its caption): data/captions.py
        encode = lambda texts: model.tokenizer.encode(texts, model.config.text_length)  # noqa: E731
        train_set, val_set = train_set.with_text(encode), val_set.with_text(encode)
    step = STEPS.get(model.train_step)(model)
    record = {"dgm_version": __version__, "model": model_name, "family": model.train_step,
              "model_config": model.config.to_dict(), "data": data_cfg, "train": train_cfg.to_dict(),
              "command": history[0], "commands": history, "run_id": run_id}
    hint = f"dgm train {model_name} --out {run_dir} --resume"
    trainer = Trainer(step, train_set, train_cfg, run_dir, val_set=val_set, dist_info=info, resume=resume,
                      resume_hint=hint, identity=identity(record["model"], record["model_config"], data_cfg, run_id))
    if info.is_main:
        summary = _write_and_fit(run_dir, record, trainer, resume, hint)
    else:
        summary = trainer.fit()
    summary["run_dir"] = str(run_dir)
    summary["world_size"] = info.world_size
    summary["is_main"] = info.is_main
    summary["default_metric"] = ",".join(model.default_metrics)
    summary["val_summary"] = model.summarize(summary.get("val") or {})
    return summary


def _pairs_mismatch(model_name: str, data: str, pairs: bool) -> str:
    """Why a translation model and a dataset of one image domain (or the other way round) do not go together."""
    if pairs:
        users = ", ".join(n for n in MODELS.names() if "pairs" in MODELS.get(n).data_kinds)
        return (f"{data} pairs two image domains for a translation model ({users}); {model_name} models one domain: "
                "train it on an image dataset such as fashion-mnist")
    names = ", ".join(n for n in DATASETS.names() if getattr(DATASETS.get(n), "is_pairs", False))
    return f"{model_name} translates between two image domains; {data} is not a pair dataset (use one of: {names})"


def _write_and_fit(run_dir: Path, record: Dict[str, Any], trainer: Trainer, resume: bool, hint: str) -> Dict[str, Any]:
    """The first writes of a run (everything before only read), then training; a failure undoes what a new run
    wrote if that was no more than its config, and a write that fails ends in one line."""
    run_dir.mkdir(parents=True, exist_ok=True)
    moved: List[Tuple[Path, Path]] = []
    before = set()
    try:
        if not resume and _holds_run(run_dir):
            moved = _archive_attempt(run_dir)
        before = set(os.listdir(run_dir))
        ckpt.remove_stale_tmp(run_dir)
        write_json(run_dir / CONFIG, record)
        return trainer.fit()
    except BaseException as e:
        if not resume:
            _roll_back(run_dir, before, moved)
        if isinstance(e, OSError) and _write_error(e, run_dir):
            raise _write_failed(run_dir, e, hint) from None
        raise


def _archive_attempt(run_dir: Path) -> List[Tuple[Path, Path]]:
    """Move the files of an attempt that stopped before its first checkpoint to RUN/attempts/N/; the moves."""
    k = 1
    while (run_dir / ATTEMPTS / str(k)).exists():
        k += 1
    dest = run_dir / ATTEMPTS / str(k)
    dest.mkdir(parents=True)
    moved: List[Tuple[Path, Path]] = []
    try:
        for name in (CONFIG, "metrics.jsonl", "tb", "samples", "checkpoints"):
            if (run_dir / name).exists():
                os.replace(run_dir / name, dest / name)
                moved.append((run_dir / name, dest / name))
    except BaseException:
        _undo(moved)
        raise
    print(f"dgm: note: {run_dir} held a run that stopped before its first checkpoint; its files are now in {dest}",
          file=sys.stderr)
    return moved


def _undo(moved: List[Tuple[Path, Path]]) -> None:
    for src, dst in reversed(moved):
        with contextlib.suppress(OSError):
            os.replace(dst, src)
    if moved:
        dest = moved[0][1].parent
        for d in (dest, dest.parent):
            with contextlib.suppress(OSError):
                d.rmdir()


def _roll_back(run_dir: Path, before: set, moved: List[Tuple[Path, Path]]) -> None:
    """A new run failed: if it left nothing but its config.json (and empty folders), remove them and put back
    an archived attempt; if it wrote logs, samples or a checkpoint, keep everything."""
    try:
        new = set(os.listdir(run_dir)) - before - {LOCK_NAME}
    except OSError:
        return
    empty = {n for n in new if (run_dir / n).is_dir() and not any((run_dir / n).iterdir())}
    if new - empty - {CONFIG}:
        return
    for name in empty:
        with contextlib.suppress(OSError):
            (run_dir / name).rmdir()
    with contextlib.suppress(OSError):
        (run_dir / CONFIG).unlink()
    _undo(moved)


def _write_error(e: OSError, run_dir: Path) -> bool:
    """A full disk, or any OS error on a file of the run folder."""
    if e.errno in _DISK_FULL:
        return True
    name = e.filename
    try:
        return name is not None and Path(os.path.abspath(os.fspath(name))).is_relative_to(run_dir.absolute())
    except TypeError:
        return False


def _write_failed(run_dir: Path, e: OSError, hint: str) -> DgmError:
    last = ckpt.latest_checkpoint(run_dir)
    kept = (f"last good checkpoint: {last}; once fixed, continue with: {hint}" if last else
            "no checkpoint was written; once fixed, run the same command again")
    return DgmError(f"cannot write to run folder {run_dir} ({e.strerror or type(e).__name__}); {kept}")


# -- what a resume may change -------------------------------------------------------------------------------
def _check_resume(saved: Dict[str, Any], run_dir: Path, model_name: str, data_cfg: Dict[str, Any],
                  model_opts: Dict[str, Any], overrides: Dict[str, Any]) -> None:
    """Refuse a resume whose model, data or options differ from the run's saved ones, naming the saved value."""
    if model_name != saved.get("model"):
        raise DgmError(f"--resume: {run_dir} trained {saved.get('model')}, not {model_name}; continue it with: "
                       f"dgm train {saved.get('model')} --out {run_dir} --resume")
    data = saved.get("data") or {}
    cls = MODELS.get(model_name)
    saved_model = cls.Config.from_dict(saved.get("model_config") or {})  # read as the model reads it (GAN parts)
    train_saved = {**TrainConfig().to_dict(), **(saved.get("train") or {})}
    given = [(_DATA_FLAGS[k], v, data.get(k)) for k, v in data_cfg.items() if k in _DATA_FLAGS and v is not None]
    given += [(_OPTION_FLAGS.get(k, "--" + k.replace("_", "-")), v, (data.get("options") or {}).get(k))
              for k, v in (data_cfg.get("options") or {}).items() if v is not None]
    given += [("--" + k.replace("_", "-"), v, getattr(saved_model, k, None))
              for k, v in model_opts.items() if v is not None]
    given += [("--" + k.replace("_", "-"), v, train_saved.get(k))
              for k, v in overrides.items() if k not in RESUMABLE and v is not None]
    for flag, value, was in given:
        if not _same(flag, value, was):
            raise DgmError(f"--resume continues {run_dir} as it was trained: {flag} {_show(value)} differs from the "
                           f"saved {_show(was)}; drop {flag}, or start a new run with another --out")


def _same(flag: str, value: Any, was: Any) -> bool:
    if flag == "--data-dir" and value is not None and was is not None:
        return Path(value).resolve() == Path(was).resolve()
    return value == was


def _show(v: Any) -> str:
    return "(not set)" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
