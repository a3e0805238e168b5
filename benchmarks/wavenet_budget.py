"""WaveNet on the `speech` dataset: generation speed (naive vs Fast WaveNet cached) and test NLL at a CPU budget.

Protocol (every part on one CPU thread, torch.set_num_threads(1); times are process CPU seconds, so other load on
the machine does not bias them):

- speed: the library-default WaveNet (2 stacks of dilations 1..512, 32 residual / 64 skip channels, receptive
  field 2047, random weights) generates one waveform of 8000 samples (1 s at 8 kHz) with ``method="cached"``
  (per-layer queues) in full, and with ``method="naive"`` (the network over the last 2048 inputs for every sample)
  on the first 2548 samples from the same uniforms, in one process; the naive time is scaled to 8000 samples
  with its measured cost per sample after the receptive field (constant there; see ``speed``), and the waveforms
  of the common part are compared.
- nll-wavenet: `dgm train wavenet --data speech` (default architecture, window 2000, batch 8, Adam lr 1e-3, grad
  clip 1, seed 0) until it has used the first budget of CPU minutes (--max-cpu-minutes), test NLL, then resumed
  up to the second budget, test NLL again. Test NLL: `dgm eval RUN --metric nll` = every sample of the 57 whole
  test files (3.0 min of audio), the first samples of each file conditioned on zero padding.
- nll-lstm: a one-layer LSTM (128 units, 64-d input embedding of the previous level; a start token before the
  first sample) on the same mu-law levels, random windows of 1000 samples, batch 16, Adam lr 2e-3, grad clip 1,
  trained for the same budgets of CPU minutes of training steps (one run, snapshots), scored on the same whole
  test files (state carried through each file).
- unigram: the marginal distribution of the 256 mu-law levels on the training files (add-one smoothing).

Budgets: WAVENET_BUDGETS (CPU minutes, default "10,30"); the committed results used smaller ones (see
benchmarks/README.md).

    python benchmarks/wavenet_budget.py --part speed        # ~1.5 CPU minutes
    WAVENET_BUDGETS=2,6 python benchmarks/wavenet_budget.py --part nll-wavenet
    WAVENET_BUDGETS=2,6 python benchmarks/wavenet_budget.py --part nll-lstm
    python benchmarks/wavenet_budget.py --part table        # unigram + the table from the JSON files
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "wavenet"
RUNS = Path(os.environ.get("DGM_BENCH_RUNS", "runs/bench-wavenet"))
BUDGETS = tuple(float(b) for b in os.environ.get("WAVENET_BUDGETS", "10,30").split(","))  # CPU minutes


def _write(name: str, obj) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(obj, indent=2) + "\n")


def speed(seconds: float = 1.0, naive_extra: int = 500) -> dict:
    """Cached generation of ``seconds`` of audio in full; naive generation of the first R + 1 + naive_extra samples
    with the CPU time of every network pass recorded (a forward hook), then scaled to the full length: a naive step
    runs the network over min(t, R) + 1 inputs, so its cost grows until t = R and is constant after (the recorded
    steps show it); naive(T) = measured(R + 1 + extra) + (T - R - 1 - extra) x the mean cost of the steady steps."""
    from dgm.models import build_model

    torch.manual_seed(0)
    model = build_model("wavenet", {"data_kind": "audio", "channels": 1, "height": 1, "width": 4000, "levels": 256})
    n = int(seconds * model.config.sample_rate)
    r = model.receptive_field
    m = min(n, r + 1 + naive_extra)
    noise = torch.rand(1, n, generator=torch.Generator().manual_seed(0))
    out = {"samples": n, "receptive_field": r, "threads": torch.get_num_threads(), "naive_measured_samples": m}
    c = time.process_time()
    cached = model.sample(1, n, noise=noise, method="cached")
    out["cached_cpu_s"] = time.process_time() - c
    print("cached", out["cached_cpu_s"], flush=True)
    stamps = []
    hook = model.register_forward_hook(lambda *a: stamps.append(time.process_time()))
    c = time.process_time()
    naive = model.sample(1, m, noise=noise[:, :m], method="naive")
    out["naive_measured_cpu_s"] = time.process_time() - c
    hook.remove()
    steps = np.diff(np.array([c] + stamps))
    steady = steps[r + 1:]
    out["naive_step_cpu_s_at"] = {str(t): float(np.mean(steps[max(t - 50, 0):t + 50])) for t in (50, 500, 1000, 1500, 2000, r + 1 + naive_extra // 2)}
    out["naive_steady_step_cpu_s"] = float(steady.mean())
    half = len(steady) // 2
    out["naive_steady_halves_cpu_s"] = [float(steady[:half].mean()), float(steady[half:].mean())]
    out["naive_cpu_s"] = out["naive_measured_cpu_s"] + (n - m) * out["naive_steady_step_cpu_s"]
    out["naive_extrapolated"] = n > m
    out["speedup_cpu"] = out["naive_cpu_s"] / out["cached_cpu_s"]
    out["identical"] = bool(torch.equal(cached[:, :, :m], naive))
    _write("speed.json", out)
    print(out, flush=True)
    return out


def _dgm(*args) -> None:
    from dgm.cli import main

    rc = main(list(args))
    if rc:
        raise SystemExit(f"dgm {' '.join(args)} failed ({rc})")


def _eval(run: Path) -> dict:
    from dgm.metrics import evaluate

    c = time.process_time()
    r = evaluate(str(run), ["nll"])
    r["eval_cpu_s"] = time.process_time() - c
    return r


def nll_wavenet(window: int = 2000) -> dict:
    from dgm import checkpoint as ckpt
    from dgm.data.audio import levels_to_pcm, write_wav
    import dgm

    run = RUNS / "wavenet-speech"
    common = ["--steps", "100000000", "--out", str(run), "--no-progress", "--n-samples", "0", "--ckpt-every", "500"]
    out = {"model": "wavenet", "run": str(run), "snapshots": []}
    for i, minutes in enumerate(BUDGETS):
        extra = ["--resume"] if i else ["--data", "speech", "--batch-size", "8", "--window", str(window), "--grad-clip", "1",
                                         "--seed", "0"]
        budget = minutes - (BUDGETS[i - 1] if i else 0)
        _dgm("train", "wavenet", *common, "--max-cpu-minutes", str(budget), *extra)
        state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
        r = _eval(run)
        out["snapshots"].append({"cpu_minutes": minutes, "steps": state["step"], "bits_per_sample": r["bits_per_sample"],
                                 "nll": r})
        _write("nll_wavenet.json", out)
        print(out["snapshots"][-1], flush=True)
    model = dgm.load(run)
    x = model.sample(1, model.config.sample_rate, generator=torch.Generator().manual_seed(0))
    out["sample_wav"] = str(write_wav(RESULTS / "wavenet-speech-1s.wav", levels_to_pcm(x[0, 0].numpy()),
                                      model.config.sample_rate))
    _write("nll_wavenet.json", out)
    return out


class LSTMBaseline(nn.Module):
    """p(x_t | x_<t) from an LSTM over the previous level's embedding (token 256 = start)."""

    def __init__(self, hidden: int = 128, emb: int = 64):
        super().__init__()
        self.embed = nn.Embedding(257, emb)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 256)

    def forward(self, x, state=None, start=True):
        """x (B, T) levels -> logits (B, T, 256) of x_t given x_<t (and the state before x_0)."""
        prev = F.pad(x, (1, 0), value=256)[:, :-1] if start else x[:, :-1]
        h, state = self.lstm(self.embed(prev), state)
        return self.out(h), state


@torch.no_grad()
def _lstm_test_bits(model, signals, chunk: int = 4000) -> float:
    total, count = 0.0, 0
    for s in signals:
        x = torch.as_tensor(s.astype(np.int64))[None]
        state, prev = None, torch.tensor([[256]])
        for a in range(0, x.shape[1], chunk):
            seg = x[:, a:a + chunk]
            h, state = model.lstm(model.embed(torch.cat([prev, seg[:, :-1]], 1)), state)
            total -= F.log_softmax(model.out(h), -1).gather(-1, seg[..., None]).double().sum().item()
            prev = seg[:, -1:]
        count += x.shape[1]
    return total / count / math.log(2)


def nll_lstm(window: int = 1000, batch: int = 16) -> dict:
    from dgm.data import load_dataset

    torch.manual_seed(0)
    train, test = load_dataset("speech", "train"), load_dataset("speech", "test")
    model = LSTMBaseline()
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    rng = np.random.default_rng(0)
    lengths = np.array([len(s) for s in train.signals], dtype=np.float64)
    out = {"model": "lstm", "hidden": 128, "parameters": sum(p.numel() for p in model.parameters()), "snapshots": []}
    used, steps = 0.0, 0
    for minutes in BUDGETS:
        while used < minutes * 60:
            c = time.process_time()
            files = rng.choice(len(lengths), batch, p=lengths / lengths.sum())
            xs = []
            for f in files:
                s = train.signals[f]
                a = rng.integers(0, max(len(s) - window, 0) + 1)
                w = s[a:a + window]
                xs.append(np.pad(w, (0, window - len(w)), constant_values=128))
            x = torch.as_tensor(np.stack(xs).astype(np.int64))
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, 256), x.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            steps += 1
            used += time.process_time() - c
        c = time.process_time()
        bits = _lstm_test_bits(model, test.signals)
        out["snapshots"].append({"cpu_minutes": minutes, "steps": steps, "train_cpu_s": used,
                                 "bits_per_sample": bits, "eval_cpu_s": time.process_time() - c})
        _write("nll_lstm.json", out)
        print(out["snapshots"][-1], flush=True)
    return out


def unigram() -> dict:
    from dgm.data import load_dataset

    train, test = load_dataset("speech", "train"), load_dataset("speech", "test")
    counts = np.bincount(np.concatenate(train.signals), minlength=256) + 1.0
    logp = np.log2(counts / counts.sum())
    xt = np.concatenate(test.signals)
    out = {"model": "unigram", "bits_per_sample": float(-logp[xt].mean()), "test_samples": int(len(xt)),
           "test_files": len(test.signals), "train_files": len(train.signals)}
    _write("unigram.json", out)
    return out


def table() -> str:
    uni = unigram()
    rows = ["| model | CPU minutes | steps | test bits/sample |", "|---|---|---|---|",
            f"| mu-law unigram (fit on train) | - | - | {uni['bits_per_sample']:.3f} |"]
    for name, label in (("nll_lstm.json", "LSTM 128 (baseline)"), ("nll_wavenet.json", "WaveNet (defaults)")):
        p = RESULTS / name
        if p.exists():
            for s in json.loads(p.read_text())["snapshots"]:
                rows.append(f"| {label} | {s['cpu_minutes']:g} | {s['steps']} | {s['bits_per_sample']:.3f} |")
    text = "\n".join(rows)
    sp = RESULTS / "speed.json"
    if sp.exists():
        s = json.loads(sp.read_text())
        text += ("\n\n| generation of 1 s (8000 samples), 1 thread | CPU seconds |\n|---|---|\n"
                 f"| naive (network over the last {s['receptive_field'] + 1} inputs per sample){' *' if s['naive_extrapolated'] else ''} | {s['naive_cpu_s']:.1f} |\n"
                 f"| cached (Fast WaveNet queues) | {s['cached_cpu_s']:.1f} |\n"
                 f"| speed-up | {s['speedup_cpu']:.1f}x (identical waveforms: {s['identical']}) |")
        if s["naive_extrapolated"]:
            text += (f"\n\n\\* naive measured on the first {s['naive_measured_samples']} samples "
                     f"({s['naive_measured_cpu_s']:.1f} s), the rest at the measured steady cost per sample "
                     f"({1000 * s['naive_steady_step_cpu_s']:.1f} ms; first/second half of the steady steps "
                     f"{1000 * s['naive_steady_halves_cpu_s'][0]:.1f} / {1000 * s['naive_steady_halves_cpu_s'][1]:.1f} ms)")
    print(text)
    return text


if __name__ == "__main__":
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", required=True, choices=["speed", "nll-wavenet", "nll-lstm", "table"])
    a = p.parse_args()
    {"speed": speed, "nll-wavenet": nll_wavenet, "nll-lstm": nll_lstm, "table": table}[a.part]()
    sys.exit(0)
