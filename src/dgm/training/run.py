"""Train (or resume) a run: data, model, step and engine put together; the run directory itself is ``dgm.runs``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from .. import checkpoint as ckpt
from .._version import __version__
from ..data import DATASETS, ImageDataset
from ..errors import DgmError
from ..lock import one_writer
from ..models import DATA_FIELDS, MODELS, build_model
from ..runs import CONFIG, identity, load, load_data, read_run_config, write_json
from .config import TrainConfig
from .distributed import setup
from .engine import Trainer, seed_everything
from .steps import STEPS


def _fresh_dir(model: str, data: str) -> Path:
    base = Path("runs") / f"{model}-{data}"
    path, k = base, 1
    while (path / CONFIG).exists():
        k += 1
        path = Path(f"{base}-{k}")
    return path


@one_writer  # one process writes a run folder at a time (dgm/lock.py)
def train_run(model_name: str, data_cfg: Dict[str, Any], model_opts: Dict[str, Any], train_cfg: TrainConfig,
              out: Optional[str] = None, resume: bool = False, overrides: Optional[Dict[str, Any]] = None,
              command: str = "") -> Dict[str, Any]:
    """Train (or resume) a run; returns the engine's summary plus the run directory."""
    if resume:
        if not out:
            raise DgmError("--resume needs --out DIR naming the run to continue")
        saved = read_run_config(out)
        model_name, data_cfg, model_opts = saved["model"], saved["data"], saved["model_config"]
        train_cfg = TrainConfig.from_dict({**saved["train"], **(overrides or {})})
    cls = MODELS.get(model_name)  # unknown name: a clear error before any data is read
    if not resume and cls.input_scale == "pm1" and not getattr(DATASETS.get(data_cfg["name"]), "is_toy", False):
        data_cfg = {**data_cfg, "scale": "pm1"}
    run_dir = Path(out) if out else _fresh_dir(model_name, data_cfg["name"])
    if not resume and (ckpt.list_checkpoints(run_dir) or (run_dir / CONFIG).exists()):
        raise DgmError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    train_cfg.validate()
    info = setup(train_cfg.device)
    train_set = load_data(data_cfg, "train")
    val_set = load_data(data_cfg, "val")
    if isinstance(train_set, ImageDataset):
        spec = {"data_kind": "images", **{k: getattr(train_set.spec, k) for k in DATA_FIELDS if k != "data_kind"}}
    elif "points" in cls.data_kinds:  # vectors of real numbers: no levels, no image shape
        spec = {"data_kind": "points", "channels": train_set.dim, "height": 1, "width": 1, "levels": 0,
                "num_classes": 0}
    else:
        raise DgmError(f"model {model_name} needs image data; {data_cfg['name']} is a toy point dataset "
                       f"(train a gan on it: dgm train gan --data {data_cfg['name']})")
    if not resume:
        model_opts = {**model_opts, **spec}
    seed_everything(train_cfg.seed)
    model = build_model(model_name, model_opts)
    if not resume and cls.source_run is not None:  # e.g. a prior copies its frozen VQ-VAE's weights
        model.init_from_sources(load)
    step = STEPS.get(model.train_step)(model)
    record = {"dgm_version": __version__, "model": model_name, "family": model.train_step,
              "model_config": model.config.to_dict(), "data": data_cfg, "train": train_cfg.to_dict(),
              "command": command}
    hint = f"dgm train {model_name} --out {run_dir} --resume"
    trainer = Trainer(step, train_set, train_cfg, run_dir, val_set=val_set, dist_info=info, resume=resume,
                      resume_hint=hint, identity=identity(record["model"], record["model_config"], data_cfg))
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / CONFIG, record)
    summary = trainer.fit()
    summary["run_dir"] = str(run_dir)
    summary["world_size"] = info.world_size
    summary["is_main"] = info.is_main
    summary["default_metric"] = ",".join(model.default_metrics)
    summary["val_summary"] = model.summarize(summary.get("val") or {})
    return summary
