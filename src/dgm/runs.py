"""Run directories and checkpoint files: what a trained model is, where it lives, and ``load`` to rebuild it.

A run directory holds config.json + checkpoints/ + metrics.jsonl + tb/ + samples/. Every checkpoint file also
describes itself (``model_name``, ``model_config``, ``data``, ``dgm_version``; see ``describe``), so one .pt file
is enough to rebuild its model. This layer sits below ``metrics/`` and ``training/``: it knows models, data
and checkpoint files, and nothing about how a model is trained or measured.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from . import checkpoint as ckpt
from ._version import __version__
from .data import load_dataset
from .errors import DgmError, checkpoint_mismatch
from .models import MODELS, build_model
from .models.base import shell_model
from .part_options import fits

CONFIG = "config.json"
#: the keys that make a checkpoint file self-describing (written by the engine beside the weights)
IDENTITY = ("model_name", "model_config", "data", "dgm_version")


def read_run_config(run_dir) -> Dict[str, Any]:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise DgmError(f"{run_dir} is not a dgm run directory (no {CONFIG}); pass the --out folder of a `dgm train` run")
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        why = f"{e.msg} at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "not UTF-8 text"
        raise DgmError(f"{path} is not valid JSON ({why})") from None
    check_run_config(path, cfg)
    return cfg


def check_run_config(path, cfg) -> None:
    """Refuse, in one line naming ``path``, a run config that is not the object `dgm train` writes: not a JSON
    object, a missing key, or a value of the wrong type (also inside ``model_config``)."""
    def bad(why: str):
        raise DgmError(f"{path}: {why}; this is not the config.json `dgm train` writes (restore it or retrain)")

    if not isinstance(cfg, dict):
        bad(f"a JSON {type(cfg).__name__} where an object is expected")
    for key, kind in (("model", str), ("model_config", dict), ("data", dict)):
        if key not in cfg:
            bad(f"missing key {key!r}")
        if not isinstance(cfg[key], kind):
            bad(f"{key!r} must be a JSON {'string' if kind is str else 'object'}, got {json.dumps(cfg[key])[:40]}")
    if "train" in cfg and not isinstance(cfg["train"], dict):
        bad("'train' must be a JSON object")
    if not isinstance(cfg["data"].get("name"), str):
        bad("'data' has no dataset 'name'")
    if cfg["model"] not in MODELS.names():
        return  # load() names the unknown model
    config_cls = MODELS.get(cfg["model"]).Config
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        if f.name in cfg["model_config"] and not fits(cfg["model_config"][f.name], hints.get(f.name)):
            bad(f"model_config {f.name!r} has the wrong type ({json.dumps(cfg['model_config'][f.name])[:40]})")


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as JSON atomically (temporary file, then rename; no ``*.tmp`` is left when a write fails)."""
    text = json.dumps(obj, indent=2) + "\n"
    with ckpt.atomic_file(Path(path), "w") as f:
        f.write(text)


def identity(model_name: str, model_config: Dict[str, Any], data: Dict[str, Any],
             run_id: Optional[str] = None) -> Dict[str, Any]:
    """What a checkpoint file says about itself: enough to rebuild its model and reload its data, and the random id
    of the run that wrote it (runs since issue 32)."""
    out = {"model_name": model_name, "model_config": model_config, "data": data, "dgm_version": __version__}
    return {**out, "run_id": run_id} if run_id else out


def identity_mismatch(state: Dict[str, Any], model_name: str, model_config: Dict[str, Any], data: Dict[str, Any],
                      run_id: Optional[str] = None) -> Optional[str]:
    """How a checkpoint's identity differs from its run's (None: it belongs to the run, or it is too old to say).
    Model configs are compared as the model reads them (a flat config of an old run equals its composed form)."""
    if not all(k in state for k in ("model_name", "model_config", "data")):
        return None
    for key, kind in (("model_name", str), ("model_config", dict), ("data", dict), ("run_id", (str, type(None)))):
        if not isinstance(state.get(key), kind):
            return f"its {key!r} entry is a {type(state.get(key)).__name__}, not what dgm writes"
    if state["model_name"] != model_name:
        return f"it holds a {state['model_name']}, the run trains a {model_name}"
    if run_id and state.get("run_id") and state["run_id"] != run_id:
        return f"it was written by another run (run id {state['run_id'][:8]}, this run's {run_id[:8]})"
    config = MODELS.get(model_name).Config
    try:
        same = config.from_dict(state["model_config"]).to_dict() == config.from_dict(model_config).to_dict()
    except (DgmError, TypeError):
        same = False
    if not same:
        return "its model config is not the run's config.json"
    if state["data"] != data:
        return f"it was trained on {state['data'].get('name')} data set up otherwise than the run's"
    return None


def load_data(data_cfg: Dict[str, Any], split: str):
    return load_dataset(data_cfg["name"], split, data_dir=data_cfg.get("data_dir"), binarize=data_cfg.get("binarize"),
                        levels=data_cfg.get("levels"), scale=data_cfg.get("scale", "levels"),
                        **data_cfg.get("options", {}))


def _run_of(file: Path) -> Optional[Path]:
    """The run directory a checkpoint file sits in (RUN/checkpoints/FILE.pt), if it still exists."""
    run = file.parent.parent if file.parent.name == "checkpoints" else file.parent
    return run if (run / CONFIG).is_file() else None


def describe(path) -> Dict[str, Any]:
    """The run config of a run directory (its config.json) or of a checkpoint file (the description stored in
    it; a file written before checkpoints described themselves falls back to its run's config.json)."""
    path = Path(path)
    if path.is_dir():
        return read_run_config(path)
    return _file_config(path, ckpt.load_checkpoint(path))


def _file_config(path: Path, state: Dict[str, Any]) -> Dict[str, Any]:
    if all(k in state for k in IDENTITY):
        cfg = {"model": state["model_name"], "model_config": state["model_config"], "data": state["data"],
               "dgm_version": state["dgm_version"]}
        check_run_config(path, cfg)
        return cfg
    run = _run_of(path)
    if run is None:
        raise DgmError(f"{path} was written before checkpoints described themselves and its run directory is gone; "
                       f"load it through its run: dgm.load(RUN, checkpoint=FILE)")
    return read_run_config(run)


def source_run(cls, name: str, run) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """`dgm train NAME --from RUN`: (the data spec, the config fields) that model class ``cls`` takes from RUN.

    ``cls.source_run`` names the model RUN must have trained; a model fitted to another run models its data.
    """
    if cls.source_run is None:
        users = ", ".join(n for n in MODELS.names() if MODELS.get(n).source_run is not None)
        raise DgmError(f"--from is for models fitted to another run ({users}), not {name}")
    source = describe(run)
    if source["model"] != cls.source_run:
        raise DgmError(f"--from {run}: that run trained a {source['model']}; pass a {cls.source_run} run")
    return source["data"], cls.source_options(str(run), source)


def _check_weights(path: Path, name: str, config: Dict[str, Any], weights) -> None:
    """Before the model is built (its memory allocated): the file's weights are a mapping of tensors with the names
    and shapes that its config's model has (built on the meta device: no memory). A config altered to absurd sizes
    is refused here, naming the file, not by a failed allocation."""
    if not isinstance(weights, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in weights.items()):
        raise DgmError(f"{path}: refused: its 'model' entry is not a mapping of names to tensors; this is not a file "
                       "dgm wrote (use the run's own checkpoints)")
    shell = shell_model(name, config)
    if shell is None:  # a model built by computing with its tensors: checked by load_state_dict after the build
        return
    want = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in weights.items()}
    wrong = next((k for k in want if k in have and want[k] != have[k]), None)
    if wrong is not None:
        detail = f"{wrong} is {list(have[wrong])} in the file, {list(want[wrong])} in the model its config describes"
    elif set(want) != set(have):
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        detail = (f"missing tensors {', '.join(missing[:3])}" if missing else
                  f"unexpected tensors {', '.join(extra[:3])}")
    else:
        return
    raise DgmError(f"{path}: this checkpoint's weights do not fit the model its config describes ({detail}); use it "
                   "with the run that wrote it")


def load(run, checkpoint: Optional[str] = None, device: str = "cpu", ema: bool = True) -> torch.nn.Module:
    """Rebuild a trained model (eval mode) from a run directory or from one checkpoint file.

    ``run``: a run directory (its config.json says what to build) or a .pt checkpoint file (it says so itself).
    ``checkpoint`` (run directories): "latest" (default), "best" (best validation NLL so far) or a checkpoint file.
    The model gets ``run_config`` (model, model_config, data, ...), ``trained_steps`` and ``checkpoint_file``
    (the file whose weights it holds). ``ema=False``: a GAN samples with its raw generator, not the EMA of its weights
    (a run without an EMA refuses it).
    """
    run = Path(run)
    if run.is_dir():
        cfg = read_run_config(run)
        path = ckpt.resolve(run, checkpoint)
        state = ckpt.load_checkpoint(path)
        wrong = identity_mismatch(state, cfg.get("model"), cfg.get("model_config"), cfg.get("data"), cfg.get("run_id"))
        if wrong:
            raise DgmError(f"{path} does not belong to the run {run}: {wrong}; use the run that wrote it, or load the "
                           "file alone (dgm sample|eval FILE.pt)")
    elif run.is_file():
        if checkpoint not in (None, "latest") and Path(checkpoint) != run:
            raise DgmError(f"{run} is a checkpoint file: it names its own weights; drop --checkpoint {checkpoint}")
        path = run
        state = ckpt.load_checkpoint(path)
        cfg = _file_config(path, state)
    else:
        raise DgmError(f"{run} is not a dgm run directory nor a checkpoint file (no such path); pass the --out folder "
                       "of a `dgm train` run or one of its .pt files")
    MODELS.get(cfg["model"])  # unknown name: a clear error
    source = run / CONFIG if run.is_dir() else path
    try:  # a config altered to values dgm refuses (an absurd size) is named with its file
        MODELS.get(cfg["model"]).Config.from_dict(cfg["model_config"])
    except DgmError as e:
        raise DgmError(f"{source}: refused: its model config is not one dgm builds ({e})") from None
    if isinstance(state["model"], dict):
        state["model"] = ckpt.plain_names(state["model"])
    _check_weights(path, cfg["model"], cfg["model_config"], state["model"])
    model = build_model(cfg["model"], cfg["model_config"], source=str(source))
    try:
        model.load_state_dict(ckpt.plain_names(state["model"]))
    except RuntimeError as e:  # missing, unexpected or differently shaped tensors
        raise checkpoint_mismatch(e, path) from None
    fault = model.loaded_fault()
    if fault:
        raise DgmError(f"{path}: refused: {fault} (a diverged run or an altered file); use an earlier checkpoint of "
                       "the run or retrain")
    model.run_config = cfg
    model.trained_steps = state.get("step")
    model.checkpoint_file = Path(path)
    if not ema:
        if not getattr(model, "has_ema", False):
            raise DgmError(f"--no-ema: this {cfg['model']} run keeps no EMA of its weights (GANs trained with "
                           "--ema-decay do); drop --no-ema")
        model.use_ema(False)
    return model.to(device).eval()


__all__ = ["CONFIG", "IDENTITY", "read_run_config", "check_run_config", "write_json", "identity", "identity_mismatch", "load_data", "describe", "source_run", "load"]
