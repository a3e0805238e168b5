"""Audio pictures: each waveform over time above its spectrogram, one row per sample, in one PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DgmError
from ..outputs import savefig


def require_pyplot():
    """matplotlib.pyplot on the Agg backend, or a one-line error saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DgmError('audio plots need matplotlib: pip install "dgm[plot]"') from None
    return plt


def save_audio_plot(path, waves: Sequence[np.ndarray], rate: int) -> Path:
    """Write waveforms (int16) and their spectrograms (256-sample Hann frames, 75% overlap, dB) as a PNG."""
    plt = require_pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(waves)
    fig, axes = plt.subplots(n, 2, figsize=(10, 2.2 * n), squeeze=False)
    for i, w in enumerate(waves):
        a = np.asarray(w, dtype=np.float64) / 32768.0
        t = np.arange(len(a)) / rate
        axes[i, 0].plot(t, a, lw=0.4, color="k")
        axes[i, 0].set(xlim=(0, max(t[-1], 1e-3)), ylim=(-1, 1), ylabel=f"sample {i}")
        nfft = min(256, max(16, len(a) // 4))
        if len(a) >= nfft:
            axes[i, 1].specgram(a, NFFT=nfft, Fs=rate, noverlap=3 * nfft // 4, cmap="magma", scale="dB")
        axes[i, 1].set(ylabel="Hz")
    axes[-1, 0].set_xlabel("seconds")
    axes[-1, 1].set_xlabel("seconds")
    axes[0, 0].set_title("waveform")
    axes[0, 1].set_title("spectrogram")
    fig.tight_layout()
    savefig(fig, path, dpi=80)
    plt.close(fig)
    return path
