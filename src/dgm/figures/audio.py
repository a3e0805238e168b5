"""Audio samples: n WAV files and one PNG of their waveforms and spectrograms (docs/audio.md)."""
from __future__ import annotations

import torch

from ..errors import DgmError
from ..options import Option
from ..outputs import save_tensor as save_tensor_file
from .registry import LABEL, NAIVE, SAVE_TENSOR, Figure, labels, register, undo_on_failure


def _make(model, out, n, seed, seconds=1.0, label=None, naive=False, save_tensor=None):
    from ..data.audio import levels_to_pcm, write_wav
    from ..viz.audio import require_pyplot, save_audio_plot

    rate = model.config.sample_rate
    length = int(round(seconds * rate))
    if not 1 <= length <= 3600 * rate:
        raise DgmError(f"--seconds must give 1 sample to 1 hour of audio, got {seconds}")
    y = labels(model, label, n)
    require_pyplot()  # before sampling: the PNG is part of the output
    wavs = [out.with_name(f"{out.stem}-{i}.wav") for i in range(n)]
    with undo_on_failure(out, save_tensor, *wavs):
        gen = torch.Generator().manual_seed(seed)
        x = model.sample(n, length, y=y, generator=gen, method="naive" if naive else "cached").cpu()
        pcm = [levels_to_pcm(x[i, 0].numpy()) for i in range(n)]
        paths = [write_wav(path, p, rate) for path, p in zip(wavs, pcm)]
        paths.append(save_audio_plot(out, pcm, rate))
        if save_tensor:
            save_tensor_file(x, save_tensor)
    return paths


register(Figure("audio", ("sample", "audio"), _make, "audio runs: n WAV files of --seconds each and a PNG of their "
                "waveforms and spectrograms",
                options=(Option("seconds", float, 1.0, "seconds of audio per sample"), LABEL, NAIVE, SAVE_TENSOR),
                n=4))
