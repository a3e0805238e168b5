"""WaveNet: causality and receptive field, the tensor contract, cached == naive generation, and the command line
on a tiny folder of WAV files (train, resume, DDP, eval, sample)."""
import json
import wave

import numpy as np
import pytest
import torch

import dgm
from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.data import load_dataset
from dgm.data.audio import write_wav
from dgm.metrics.nll import audio_nll
from dgm.models import InputError, build_model

from conftest import torchrun

AUDIO = {"data_kind": "audio", "channels": 1, "height": 1, "width": 64, "levels": 256}
TINY = ["--layers", "3", "--stacks", "1", "--residual", "8", "--skip", "8"]


def _model(**kw):
    torch.manual_seed(0)
    return build_model("wavenet", {**AUDIO, "layers": 3, "stacks": 2, "residual": 8, "skip": 8, **kw}).eval()


def test_contract_shapes_and_log_prob_is_the_sum_of_conditionals():
    m = _model()
    x = torch.randint(0, 256, (3, 1, 40))
    logits = m(x)
    assert logits.shape == (3, 256, 1, 40)
    lp = m.log_prob(x)
    manual = torch.log_softmax(logits, 1).gather(1, x[:, None]).flatten(1).sum(1)
    assert lp.shape == (3,) and torch.allclose(lp, manual)
    assert m.receptive_field == 1 + 2 * (1 + 2 + 4) == m.config.receptive_field
    for bad in (torch.randint(0, 256, (3, 40)), torch.randint(0, 256, (3, 2, 40)), torch.full((1, 1, 5), 256)):
        with pytest.raises(InputError):
            m(bad)


@pytest.mark.parametrize("t", [0, 5, 20, 39])
def test_causal_with_the_stated_receptive_field(t):
    m = _model()
    r = m.receptive_field  # 15: the output at t sees x_{t-15} .. x_{t-1}
    x = torch.randint(0, 256, (1, 1, 40))
    # gradient through the input embedding: d logits_t / d e(x_s) for every s
    h = m.embed(x[:, 0]).detach().requires_grad_(True)
    orig = m.embed.forward
    m.embed.forward = lambda _: h
    try:
        out = m(x)[0, :, 0, t].square().sum()
    finally:
        m.embed.forward = orig
    g = torch.autograd.grad(out, h)[0][0].abs().sum(1)  # (T,)
    assert torch.all(g[t:] == 0)                          # t and later: exactly zero
    if t >= 1:
        first = max(t - r, 0)
        assert torch.all(g[first:t] > 0)                  # every input inside the receptive field matters
    if t - r - 1 >= 0:
        assert g[t - r] > 0 and torch.all(g[:t - r] == 0)  # x_{t-R} is seen, x_{t-R-1} is not


@pytest.mark.parametrize("conditional", [False, True])
def test_cached_equals_naive_for_fixed_uniforms(conditional):
    m = _model(conditional=conditional, num_classes=3 if conditional else 0)
    n, length = 3, 50
    noise = torch.rand(n, length, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 2, 1]) if conditional else None
    a = m.sample(n, length, y=y, noise=noise, method="cached")
    b = m.sample(n, length, y=y, noise=noise, method="naive")
    assert a.shape == (n, 1, length) and torch.equal(a, b)
    assert len(torch.unique(a)) > 5  # not a constant waveform
    # the cached logits agree with one full pass over the finished waveform (tolerance 1e-5 in float32)
    logits = m(a.long(), y)[:, :, 0]
    assert torch.equal(m.pixels.sample(logits, noise, dim=1), a[:, 0])
    if conditional:  # the label changes the waveform
        other = m.sample(n, length, y=torch.tensor([1, 0, 2]), noise=noise)
        assert not torch.equal(a, other)


def test_sample_refuses_bad_arguments():
    m = _model()
    with pytest.raises(InputError, match="method"):
        m.sample(1, 5, method="fast")
    with pytest.raises(InputError, match="noise"):
        m.sample(2, 5, noise=torch.rand(2, 4))
    with pytest.raises(InputError, match="class-conditional"):
        m.sample(1, 5, y=torch.tensor([0]))


@pytest.fixture(scope="module")
def wav_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("wavs")
    rng = np.random.RandomState(0)
    for i in range(8):
        d = root / ("low" if i % 2 else "high")
        d.mkdir(exist_ok=True)
        t = np.arange(1200 + 100 * i) / 8000
        s = 0.4 * np.sin(2 * np.pi * (150 if i % 2 else 600) * t) + 0.01 * rng.randn(len(t))
        write_wav(d / f"c{i}.wav", (s * 32767).astype(np.int16), 8000)
    return root


def _train(wavs, out, *extra):
    return main(["train", "wavenet", "--data", "audio", "--data-dir", str(wavs), "--window", "200", "--batch-size",
                 "8", "--out", str(out), "--n-samples", "0", "--no-progress", "--log-every", "1", *TINY, *extra])


def test_cli_train_resume_eval_sample(wav_folder, tmp_path, capsys):
    assert _train(wav_folder, tmp_path / "full", "--steps", "4", "--conditional") == 0
    assert "receptive field 8 samples" in capsys.readouterr().err
    assert _train(wav_folder, tmp_path / "half", "--steps", "2", "--conditional") == 0
    assert _train(wav_folder, tmp_path / "half", "--steps", "4", "--resume") == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("full", "half"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert (tmp_path / "full" / "checkpoints" / "best.pt").is_file()
    capsys.readouterr()

    assert main(["eval", str(tmp_path / "full"), "--metric", "nll"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {"nll_nats", "bits_per_sample", "nats_per_sample", "n", "samples", "provenance"} <= set(r)
    assert r["n"] == 1 and 0 < r["bits_per_sample"] < 9 and r["provenance"]["step"] == 4
    test = load_dataset("audio", "test", data_dir=wav_folder)
    assert r["samples"] == len(test.signals[0])
    m = dgm.load(tmp_path / "full")  # the whole file in one pass, its label given
    x = torch.as_tensor(test.signals[0].astype(np.int64))[None, None]
    bits = -m.log_prob(x, torch.as_tensor(test.labels[:1])).double().item() / x.shape[-1] / np.log(2)
    assert abs(r["bits_per_sample"] - bits) < 1e-5
    # scoring in chunks (each re-reading the receptive field before it) equals one pass
    assert abs(audio_nll(m, test, chunk=100)["bits_per_sample"] - bits) < 1e-5

    png = tmp_path / "s" / "out.png"
    assert main(["sample", str(tmp_path / "full"), "--seconds", "0.02", "-n", "2", "--label", "1",
                 "--out", str(png)]) == 0
    wavs = sorted(png.parent.glob("*.wav"))
    assert png.is_file() and len(wavs) == 2
    with wave.open(str(wavs[0]), "rb") as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()) == (8000, 2, 1, 160)
    capsys.readouterr()

    for argv, words in ((["eval", str(tmp_path / "full"), "--metric", "fid"], "image runs"),
                        (["sample", str(tmp_path / "full"), "--complete-from", str(png)], "needs an image run"),
                        (["sample", str(tmp_path / "full"), "--plots"], "needs an image run"),
                        (["sample", str(tmp_path / "full"), "--seconds", "0"], "--seconds"),
                        (["sample", str(tmp_path / "full"), "--label", "5"], "--label")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err


def test_cli_sample_rate_trains_evaluates_and_samples_at_the_resampled_rate(tmp_path, capsys):
    pytest.importorskip("scipy")
    root = tmp_path / "mixed"
    root.mkdir()
    for i in range(6):  # half the files at 16 kHz: refused without --sample-rate, resampled to 8 kHz with it
        rate = 16000 if i % 2 else 8000
        t = np.arange(rate // 4) / rate
        write_wav(root / f"c{i}.wav", (0.4 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16), rate)
    argv = ["train", "wavenet", "--data", "audio", "--data-dir", str(root), "--window", "200", "--batch-size", "4",
            "--steps", "2", "--n-samples", "0", "--no-progress", *TINY]
    assert main([*argv, "--out", str(tmp_path / "no")]) == 2
    assert "--sample-rate HZ" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "r"), "--sample-rate", "8000"]) == 0
    assert dgm.load(tmp_path / "r").config.sample_rate == 8000
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r"), "--metric", "nll"]) == 0  # the test split resampled as in training
    r = json.loads(capsys.readouterr().out)
    test = load_dataset("audio", "test", data_dir=root, sample_rate=8000)
    assert r["samples"] == sum(len(s) for s in test.signals) and r["seconds"] == r["samples"] / 8000
    assert main(["sample", str(tmp_path / "r"), "--seconds", "0.01", "-n", "1", "--out", str(tmp_path / "s.png")]) == 0
    with wave.open(str(next(tmp_path.glob("s*.wav"))), "rb") as w:
        assert w.getframerate() == 8000 and w.getnframes() == 80
    capsys.readouterr()
    assert main(["train", "wavenet", "--data", "tones", "--sample-rate", "8000", "--steps", "1", *TINY]) == 2
    assert "has no option sample_rate" in capsys.readouterr().err
    assert main(["train", "wavenet", "--data", "audio", "--data-dir", str(root), "--sample-rate", "12",
                 "--steps", "1", *TINY]) == 2
    assert "--sample-rate must be" in capsys.readouterr().err


def test_seconds_is_refused_for_an_image_run(tiny_run, capsys):
    assert main(["sample", str(tiny_run), "--seconds", "1"]) == 2
    assert "--seconds is an option of the audio figure" in capsys.readouterr().err


@pytest.mark.slow  # multi-process (13-15 s); the default run keeps the engine's and the GAN's DDP checks
def test_ddp_two_processes_equal_one_process(wav_folder, tmp_path):
    common = ["train", "wavenet", "--data", "audio", "--data-dir", str(wav_folder), "--window", "200",
              "--batch-size", "8", "--steps", "2", "--n-samples", "0", "--no-progress", "--device", "cpu", *TINY]
    torchrun(common, tmp_path / "ddp")
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("ddp", "one"))
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
