"""Audio data: the WAV reader and its refusals, mu-law companding, the file-level split and the random windows."""
import struct

import numpy as np
import pytest
import torch

from dgm.data import load_dataset
from dgm.data.audio import (mu_law_decode, mu_law_encode, pcm_to_levels, read_wav, split_files, wav_paths,
                            write_wav)
from dgm.errors import DgmError


def _tone(n=800, f=440.0, rate=8000, amp=0.5):
    return (amp * 32767 * np.sin(2 * np.pi * f * np.arange(n) / rate)).astype(np.int16)


def _raw_wav(path, fmt=1, channels=1, width=2, rate=8000, frames=100, data=None):
    """A WAV file written by hand: any format code, sample width and channel count; ``data`` may be short."""
    data = bytes(frames * channels * width) if data is None else data
    block = channels * width
    hdr = b"RIFF" + struct.pack("<I", 36 + frames * block) + b"WAVE"
    hdr += b"fmt " + struct.pack("<IHHIIHH", 16, fmt, channels, rate, rate * block, block, 8 * width)
    hdr += b"data" + struct.pack("<I", frames * block)
    path.write_bytes(hdr + data)
    return path


def test_mu_law_round_trip_within_the_quantisation_error():
    x = np.linspace(-1, 1, 20001)
    lv = mu_law_encode(x)
    assert lv.min() == 0 and lv.max() == 255 and mu_law_encode(0.0) == 128
    back = mu_law_decode(lv)
    centres = mu_law_decode(np.arange(256))
    # quantisation error: x lies in its level's bin, the amplitudes whose f(x) is within half a level of it, and
    # the decoded value is that bin's centre
    lo, hi = mu_law_decode(lv - 0.5), mu_law_decode(lv + 0.5)
    assert np.all((lo - 1e-12 <= x) & (x <= hi + 1e-12))
    assert np.all(np.abs(back - x) <= np.maximum(hi - back, back - lo) + 1e-12)
    assert np.abs(back - x).max() < 0.022 and np.abs(back - x)[np.abs(x) < 0.01].max() < 3e-4
    assert np.array_equal(mu_law_encode(mu_law_decode(np.arange(256))), np.arange(256))  # levels are fixed points
    t = torch.linspace(-1, 1, 101)
    assert torch.equal(mu_law_encode(t), torch.from_numpy(mu_law_encode(t.numpy())))
    assert torch.allclose(mu_law_decode(torch.arange(256)), torch.from_numpy(centres))


def test_wav_write_read_round_trip(tmp_path):
    s = _tone()
    write_wav(tmp_path / "a.wav", s, 16000)
    got, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and np.array_equal(got, s)


@pytest.mark.parametrize("kind,words", [
    ("float", "not a PCM WAV"), ("8bit", "8-bit"), ("24bit", "24-bit"), ("stereo", "2 channels"),
    ("truncated", "truncated"), ("garbage", "not a PCM WAV"), ("empty", "not a PCM WAV"), ("header-only", "truncated"),
])
def test_reader_rejects_bad_files_in_one_line_naming_the_file(tmp_path, kind, words):
    p = tmp_path / f"{kind}.wav"
    if kind == "float":
        _raw_wav(p, fmt=3, width=4)
    elif kind == "8bit":
        _raw_wav(p, width=1)
    elif kind == "24bit":
        _raw_wav(p, width=3)
    elif kind == "stereo":
        _raw_wav(p, channels=2)
    elif kind == "truncated":
        _raw_wav(p, frames=100, data=bytes(50))
    elif kind == "garbage":
        p.write_bytes(b"this is not audio at all" * 4)
    elif kind == "empty":
        p.write_bytes(b"")
    else:
        _raw_wav(p, frames=100, data=b"")
    with pytest.raises(DgmError) as e:
        read_wav(p)
    msg = str(e.value)
    assert str(p) in msg and words in msg and "\n" not in msg


def _folder(root, rates=(8000,), n=6, sub=None):
    for i in range(n):
        d = root / (sub[i % len(sub)] if sub else "")
        d.mkdir(parents=True, exist_ok=True)
        write_wav(d / f"clip{i}.wav", _tone(600 + 100 * i, f=200 + 50 * i), rates[i % len(rates)])
    return root


def test_split_is_by_file_fixed_and_disjoint(tmp_path):
    root = _folder(tmp_path / "w", n=25)
    paths = wav_paths(str(root))
    parts = {s: split_files(paths, str(root), s, "audio") for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [21, 2, 2]
    assert sorted(sum(parts.values(), [])) == paths
    assert parts["test"] == split_files(list(reversed(paths)), str(root), "test", "audio")  # order-independent
    with pytest.raises(DgmError, match="at least 3"):
        split_files(paths[:2], str(root), "train", "audio")


def test_audio_folder_windows_labels_and_epochs(tmp_path):
    root = _folder(tmp_path / "w", n=12, sub=["a", "b"])
    tr = load_dataset("audio", "train", data_dir=root, window=256)
    assert tr.num_classes == 2 and tr.rate == 8000 and set(tr.labels.tolist()) <= {0, 1}
    x, y = tr[0]
    assert x.shape == (1, 256) and x.dtype == torch.int64 and 0 <= int(x.min()) <= int(x.max()) <= 255
    first = [tr[i][0] for i in range(len(tr))]
    tr.set_epoch(0, 1)
    other = [tr[i][0] for i in range(len(tr))]
    tr.set_epoch(0, 0)
    again = [tr[i][0] for i in range(len(tr))]
    assert all(torch.equal(a, b) for a, b in zip(first, again))           # (seed, epoch) fixes the windows
    assert not all(torch.equal(a, b) for a, b in zip(first, other))       # and a new epoch draws new ones
    # every training window is a piece of its file
    for (f, start), (w, _) in zip(tr._items, (tr[i] for i in range(len(tr)))):
        assert np.array_equal(w[0].numpy(), tr.signals[f][start:start + 256])
    te = load_dataset("audio", "test", data_dir=root, window=256)
    assert len(te.signals) == 1 and te.signals[0].dtype == np.uint8


def test_audio_folder_refusals(tmp_path, capsys):
    from dgm.cli import main

    root = _folder(tmp_path / "mixed", rates=(8000, 16000), n=6)
    with pytest.raises(DgmError, match="16000 Hz .* 8000 Hz|8000 Hz .* 16000 Hz"):
        for s in ("train", "val", "test"):
            load_dataset("audio", s, data_dir=root)
    with pytest.raises(DgmError, match="no .wav files"):
        (tmp_path / "empty").mkdir()
        load_dataset("audio", "train", data_dir=tmp_path / "empty")
    with pytest.raises(DgmError, match="--window"):
        load_dataset("tones", "train", window=1)
    with pytest.raises(DgmError, match="audio dataset"):
        load_dataset("tones", "train", binarize="fixed")
    bad = _folder(tmp_path / "bad", n=5)
    _raw_wav(bad / "zz.wav", fmt=3, width=4)
    for s in ("train", "val", "test"):
        try:
            load_dataset("audio", s, data_dir=bad)
        except DgmError as e:
            assert "zz.wav" in str(e)
            break
    else:
        pytest.fail("the float WAV was not refused")
    assert main(["train", "pixelcnn", "--data", "tones", "--steps", "1"]) == 2
    assert "needs image data" in capsys.readouterr().err
    assert main(["train", "pixelcnn", "--data", "digits", "--window", "100", "--steps", "1"]) == 2
    assert "window" in capsys.readouterr().err


def test_mixed_rates_are_refused_in_every_split(tmp_path):
    # a 16 kHz file in one split must stop the others too: train and test at different rates would be scored
    # against each other without a word
    root = _folder(tmp_path / "mixed", n=10)
    write_wav(root / "clip3.wav", _tone(1200, rate=16000), 16000)
    for s in ("train", "val", "test"):
        with pytest.raises(DgmError, match="clip3.wav is sampled at 16000 Hz.*--sample-rate"):
            load_dataset("audio", s, data_dir=root)


def test_sample_rate_resamples_every_file_to_one_rate(tmp_path):
    pytest.importorskip("scipy")
    from dgm.data.audio import resample

    # the defining property: a band-limited tone resampled from 16 kHz equals the same tone drawn at 8 kHz (away
    # from the ends, where the FIR filter sees the file's edges), and 8 kHz files pass unchanged
    hi, lo = _tone(3200, f=440.0, rate=16000), _tone(1600, f=440.0, rate=8000)
    down = resample(hi, 16000, 8000)
    assert down.dtype == np.int16 and len(down) == 1600
    assert np.abs(down[200:-200].astype(int) - lo[200:-200]).max() < 0.005 * 32767
    up = resample(lo, 8000, 11025)  # 441 / 320: not an integer ratio
    assert len(up) == int(np.ceil(1600 * 11025 / 8000))
    t = np.arange(len(up)) / 11025
    ref = 0.5 * 32767 * np.sin(2 * np.pi * 440.0 * t)
    assert np.abs(up[300:-300] - ref[300:-300]).max() < 0.005 * 32767
    assert resample(lo, 8000, 8000) is lo

    root = _folder(tmp_path / "mixed", rates=(8000, 16000), n=10)
    parts = {s: load_dataset("audio", s, data_dir=root, window=64, sample_rate=8000) for s in ("train", "val", "test")}
    for ds in parts.values():
        assert ds.rate == 8000
        for f, sig in zip(ds.files, ds.signals):
            pcm, r = read_wav(f)
            assert len(sig) == len(pcm) * 8000 // r  # 16 kHz files halve, 8 kHz files keep their length
            want = pcm_to_levels(resample(pcm, r, 8000))
            assert np.array_equal(sig, want)
    with pytest.raises(DgmError, match="--sample-rate must be"):
        load_dataset("audio", "train", data_dir=root, sample_rate=0)
    with pytest.raises(DgmError, match="has no option sample_rate"):
        load_dataset("tones", "train", sample_rate=8000)


def test_speech_dataset_if_installed():
    import os

    from dgm.data.audio import SPEECH_DIR

    if not os.path.isdir(SPEECH_DIR):
        pytest.skip("asterisk-core-sounds-en-wav is not installed")
    te = load_dataset("speech", "test")
    assert te.rate == 8000 and len(te.signals) == 57 and te.num_classes == 0


def test_pcm_to_levels_matches_mu_law():
    s = _tone(100)
    assert np.array_equal(pcm_to_levels(s), mu_law_encode(s / 32768.0))
