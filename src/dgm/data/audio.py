"""Audio: a 16-bit PCM WAV reader and writer, 8-bit mu-law companding, and the `speech`, `audio` and `tones` datasets.

Waveforms are int16 arrays; models see mu-law levels 0..255 (ITU-T G.711 mu-law with mu = 255, as in WaveNet,
van den Oord et al. 2016): f(x) = sign(x) ln(1 + mu|x|) / ln(1 + mu) for x = s / 32768 in [-1, 1), then f is
quantised uniformly to 256 levels, level = round((f + 1) / 2 * 255).

Split (file level, fixed): the files are ordered by the SHA-1 of their path relative to the dataset folder; the
first round(10%) (at least 1) are test, the next round(10%) (at least 1) val, the rest train. It depends only on the
file names, so it is the same on every machine and for every seed.

Batches: a split is a map-style dataset of (1, window) mu-law windows (``--window`` samples). Validation and test
windows are fixed: consecutive non-overlapping windows from the start of each file (a file shorter than one window
is padded at its end with silence, level 128). Training windows are random: item i of epoch e is a window of the
file holding position i * window of the concatenated training audio (files are drawn in proportion to their length)
at an offset drawn uniformly from a numpy generator seeded with (seed, e) -- the engine calls ``set_epoch(seed, e)``
-- so a resumed run and a DDP run see exactly the windows of an uninterrupted single-process run.
"""
from __future__ import annotations

import hashlib
import math
import os
import wave
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DgmError
from ..outputs import mark_wav
from .catalog import DATASETS, existing_dir, require_dir

MU = 255
LEVELS = MU + 1
SILENCE = 128  # mu_law_encode(0)
SPEECH_DIR = "/usr/share/asterisk/sounds/en_US_f_Allison"  # Debian package asterisk-core-sounds-en-wav
DEFAULT_WINDOW = 4000  # 0.5 s at 8 kHz
MIN_RATE, MAX_RATE = 1000, 384000  # sample rates dgm reads and resamples to (Hz)


# -- WAV files ----------------------------------------------------------------------------------------------------
def read_wav(path: str) -> Tuple[np.ndarray, int]:
    """(int16 samples, sample rate) of a 16-bit PCM mono WAV file; anything else is a one-line DgmError naming it."""
    fix = "dgm reads 16-bit PCM mono WAV files (convert with e.g. `sox IN -b 16 -c 1 -e signed OUT.wav`)"
    try:
        with wave.open(os.fspath(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            if width != 2:
                raise DgmError(f"{path}: {8 * width}-bit samples; {fix}")
            if channels != 1:
                raise DgmError(f"{path}: {channels} channels; {fix}")
            if not MIN_RATE <= rate <= MAX_RATE:
                raise DgmError(f"{path}: sample rate {rate} Hz in its header, outside {MIN_RATE}..{MAX_RATE} Hz; the "
                               "file is corrupt (or resample it beforehand)")
            size = os.path.getsize(path)
            if frames * 2 > size:  # checked before the samples are read: a header cannot make dgm allocate more
                raise DgmError(f"{path}: truncated (its header promises {frames} samples, {frames * 2} bytes; the "
                               f"file has {size} bytes); re-copy or re-record it")
            data = w.readframes(frames)
    except (wave.Error, EOFError, ValueError) as e:
        raise DgmError(f"{path}: not a PCM WAV file ({e or type(e).__name__}); {fix}") from None
    except OSError as e:
        raise DgmError(f"{path}: cannot read ({e.strerror or e}); {fix}") from None
    if len(data) != frames * 2:
        raise DgmError(f"{path}: truncated (its header promises {frames} samples, it holds {len(data) // 2}); "
                       "re-copy or re-record it")
    if frames == 0:
        raise DgmError(f"{path}: holds no samples; remove it")
    return np.frombuffer(data, dtype="<i2").astype(np.int16), rate


def write_wav(path, samples: np.ndarray, rate: int) -> str:
    """Write int16 samples as a 16-bit PCM mono WAV file; returns the path."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    mark_wav(path)  # a later command may replace it without --force (dgm.outputs)
    return os.fspath(path)


# -- mu-law ------------------------------------------------------------------------------------------------------
def mu_law_encode(x):
    """Amplitudes in [-1, 1] (numpy or torch) -> mu-law levels 0..255 (int64)."""
    if isinstance(x, torch.Tensor):
        x = x.double().clamp(-1, 1)
        f = torch.sign(x) * torch.log1p(MU * x.abs()) / math.log1p(MU)
        return torch.round((f + 1) / 2 * MU).long()
    x = np.clip(np.asarray(x, dtype=np.float64), -1, 1)
    f = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    return np.round((f + 1) / 2 * MU).astype(np.int64)


def mu_law_decode(levels):
    """Mu-law levels 0..255 (numpy or torch) -> amplitudes in [-1, 1] (float64 / the tensor's float)."""
    if isinstance(levels, torch.Tensor):
        f = levels.double() * (2.0 / MU) - 1
        return torch.sign(f) * torch.expm1(f.abs() * math.log1p(MU)) / MU
    f = np.asarray(levels, dtype=np.float64) * (2.0 / MU) - 1
    return np.sign(f) * np.expm1(np.abs(f) * np.log1p(MU)) / MU


def pcm_to_levels(samples: np.ndarray) -> np.ndarray:
    """int16 PCM -> mu-law levels (uint8)."""
    return mu_law_encode(samples.astype(np.float64) / 32768.0).astype(np.uint8)


def levels_to_pcm(levels) -> np.ndarray:
    """Mu-law levels -> int16 PCM."""
    a = mu_law_decode(np.asarray(levels))
    return np.clip(np.round(a * 32768.0), -32768, 32767).astype(np.int16)


# -- datasets ----------------------------------------------------------------------------------------------------
class AudioDataset(Dataset):
    """One split of an audio dataset: whole files as mu-law levels (``signals``) and (1, window) windows as items."""

    kind = "audio"

    def __init__(self, name: str, split: str, signals: Sequence[np.ndarray], labels: Sequence[int], rate: int,
                 window: int, num_classes: int = 0, files: Optional[List[str]] = None):
        if split != "train" and not signals:
            raise DgmError(f"{name}: the {split} split holds no files")
        self.name, self.split, self.rate, self.window = name, split, int(rate), int(window)
        self.signals = [np.asarray(s, dtype=np.uint8) for s in signals]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.num_classes, self.files = num_classes, list(files or [])
        lengths = np.array([len(s) for s in self.signals], dtype=np.int64)
        self._ends = np.cumsum(lengths)
        if split == "train":
            self._n = max(1, int(self._ends[-1]) // self.window) if len(lengths) else 0
            self._offsets = None
            self.set_epoch(0, 0)
        else:  # fixed windows: (file, start)
            self._fixed = [(f, s) for f, n in enumerate(lengths) for s in range(0, max(int(n) - self.window, 0) + 1,
                                                                                 self.window)]
            self._n = len(self._fixed)

    @property
    def samples(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def set_epoch(self, seed: int, epoch: int) -> None:
        """Draw this epoch's training offsets from a generator seeded with (seed, epoch) (no effect on val/test)."""
        if self.split != "train" or not self._n:
            return
        u = np.random.default_rng([int(seed), int(epoch)]).random(self._n)
        files = np.searchsorted(self._ends, np.arange(self._n) * self.window, side="right")
        spare = np.array([max(len(self.signals[f]) - self.window, 0) for f in files])
        self._items = list(zip(files.tolist(), np.floor(u * (spare + 1)).astype(np.int64).tolist()))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int):
        f, start = (self._items if self.split == "train" else self._fixed)[i]
        w = self.signals[f][start:start + self.window]
        if len(w) < self.window:
            w = np.concatenate([w, np.full(self.window - len(w), SILENCE, dtype=np.uint8)])
        return torch.from_numpy(w.astype(np.int64))[None], torch.tensor(int(self.labels[f]))


def split_files(paths: Sequence[str], root: str, split: str, name: str) -> List[str]:
    """The files of ``split``: ordered by SHA-1 of the relative path; 10% test, 10% val (at least 1 each)."""
    if len(paths) < 3:
        raise DgmError(f"{name}: {root} holds {len(paths)} WAV file(s); a train/val/test split needs at least 3")
    key = sorted(paths, key=lambda p: hashlib.sha1(os.path.relpath(p, root).encode()).hexdigest())
    n_test = n_val = max(1, round(0.1 * len(key)))
    return {"test": key[:n_test], "val": key[n_test:n_test + n_val], "train": key[n_test + n_val:]}[split]


def wav_paths(root: str) -> List[str]:
    """.wav files under root, recursively, sorted."""
    found = []
    for d, dirs, names in os.walk(root):
        dirs.sort()
        found += [os.path.join(d, n) for n in names if n.lower().endswith(".wav")]
    return sorted(found)


def _as_int(value) -> Optional[int]:
    """An integer option given as an int or a string of digits; None for anything else (bools included)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    return int(value)


def _window(window) -> int:
    w = _as_int(window)
    if w is None or w < 2:
        raise DgmError(f"--window must be an integer >= 2 samples, got {window!r}")
    return w


def wav_rate(path: str) -> int:
    """The sample rate in a WAV file's header (the samples are not read; read_wav checks the rest)."""
    try:
        with wave.open(os.fspath(path), "rb") as w:
            rate = w.getframerate()
    except (wave.Error, EOFError, ValueError, OSError):
        return read_wav(path)[1]  # raises its one-line error naming the file
    return rate if MIN_RATE <= rate <= MAX_RATE else read_wav(path)[1]  # ditto for an absurd rate


def _rate(rate) -> Optional[int]:
    if rate is None:
        return None
    r = _as_int(rate)
    if r is None or not MIN_RATE <= r <= MAX_RATE:
        raise DgmError(f"--sample-rate must be an integer number of Hz in {MIN_RATE}..{MAX_RATE}, got {rate!r}")
    return r


def resample(samples: np.ndarray, rate: int, to: int) -> np.ndarray:
    """int16 PCM at ``rate`` -> int16 PCM at ``to`` Hz: scipy's polyphase resampler (``resample_poly``: a Kaiser-
    windowed FIR low-pass at the lower Nyquist frequency, up by to/g and down by rate/g, g = gcd), rounded and
    clipped to int16. Length ceil(n * to / rate)."""
    if rate == to:
        return samples
    try:
        from scipy.signal import resample_poly
    except ImportError:
        raise DgmError("--sample-rate needs scipy for its resampler: `pip install scipy` (or convert the files "
                       f"beforehand, e.g. `sox IN -r {to} OUT.wav`)") from None
    g = math.gcd(int(rate), int(to))
    y = resample_poly(samples.astype(np.float64), int(to) // g, int(rate) // g)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def load_folder(name: str, root: str, split: str, window, labelled: bool, sample_rate=None) -> AudioDataset:
    """A split of the WAV files under root. Without ``sample_rate`` every file of the folder (all splits, so that
    train and test cannot differ) must have one rate; with it, files of another rate are resampled to it."""
    window, sample_rate = _window(window), _rate(sample_rate)
    paths = wav_paths(root)
    if not paths:
        raise DgmError(f"{name}: no .wav files under {root}; pass --data-dir DIR holding 16-bit PCM mono WAV files")
    if sample_rate is None:
        first, rate = paths[0], wav_rate(paths[0])
        for p in paths[1:]:
            r = wav_rate(p)
            if r != rate:
                raise DgmError(f"{p} is sampled at {r} Hz but {first} at {rate} Hz; pass --sample-rate HZ to "
                               f"resample every file to one rate (needs scipy), or convert them (e.g. `sox IN -r "
                               f"{rate} OUT.wav`)")
    classes = sorted({os.path.relpath(os.path.dirname(p), root) for p in paths}) if labelled else []
    if len(classes) < 2:
        classes = []
    chosen = split_files(paths, root, split, name)
    signals, labels = [], []
    for p in chosen:
        s, r = read_wav(p)
        if sample_rate is not None:
            s = resample(s, r, sample_rate)
        signals.append(pcm_to_levels(s))
        labels.append(classes.index(os.path.relpath(os.path.dirname(p), root)) if classes else -1)
    return AudioDataset(name, split, signals, labels, sample_rate or rate, window, len(classes), chosen)


@DATASETS.register("speech", help="one speaker's 568 English prompts, 8 kHz 16-bit mono (~25 min, Debian "
                   f"asterisk-core-sounds-en-wav; default --data-dir {SPEECH_DIR}); options window, sample_rate")
def _speech(split: str, data_dir: Optional[str] = None, window: int = DEFAULT_WINDOW,
            sample_rate: Optional[int] = None) -> AudioDataset:
    """The en_US_f_Allison prompts of the Asterisk PBX (CC BY-SA), all WAV files under the folder, unlabelled."""
    fix = "install them with `apt-get install -y asterisk-core-sounds-en-wav` or pass --data-dir DIR"
    d = existing_dir("speech", data_dir or SPEECH_DIR, "WAV files", fix)
    return load_folder("speech", d, split, window, labelled=False, sample_rate=sample_rate)


@DATASETS.register("audio", help="a folder of 16-bit PCM mono WAV files of one sample rate (--data-dir; "
                   "subfolders are class labels); options window, sample_rate (resample every file)")
def _audio(split: str, data_dir: Optional[str] = None, window: int = DEFAULT_WINDOW,
           sample_rate: Optional[int] = None) -> AudioDataset:
    d = require_dir("audio", data_dir, "16-bit PCM mono WAV files")
    return load_folder("audio", d, split, window, labelled=True, sample_rate=sample_rate)


TONE_SHAPES = ("sine", "square", "sawtooth")


@DATASETS.register("tones", help="built-in synthetic tones, 8 kHz: 120 clips of 0.25 s, labelled by wave shape "
                   "(sine, square, sawtooth); tiny and instant; option window")
def _tones(split: str, data_dir: Optional[str] = None, window: int = 500) -> AudioDataset:
    """Clips of one random pitch (110-880 Hz) and amplitude, from RandomState(0); split 96/12/12 by index."""
    window = _window(window)
    rng = np.random.RandomState(0)
    t = np.arange(2000) / 8000.0
    signals, labels = [], []
    for i in range(120):
        f, a, k = 110 * 2 ** (3 * rng.rand()), 0.2 + 0.6 * rng.rand(), i % 3
        phase = (f * t + rng.rand()) % 1.0
        wave_ = [np.sin(2 * np.pi * phase), np.sign(phase - 0.5), 2 * phase - 1][k]
        signals.append(mu_law_encode(a * wave_).astype(np.uint8))
        labels.append(k)
    idx = {"test": range(0, 12), "val": range(12, 24), "train": range(24, 120)}[split]
    return AudioDataset("tones", split, [signals[i] for i in idx], [labels[i] for i in idx], 8000, window, 3)


_tones.builtin = True
_speech.is_audio = _audio.is_audio = _tones.is_audio = True
