"""VQ-VAE: the quantiser (nearest codebook vectors, straight-through gradient, loss formulas, EMA updates), training
and resume through the shared engine, and the Gated PixelCNN prior over code maps (`--from RUN`)."""
import json

import pytest
import torch

import dgm
from dgm.cli import main
from dgm.nn import VectorQuantizer

from test_engine import _assert_same_state, _final_state

VQ_TINY = ["--hidden", "16", "--codebook-size", "8", "--code-dim", "4"]


def test_quantizer_returns_nearest_codebook_vectors_and_loss_terms():
    torch.manual_seed(0)
    vq = VectorQuantizer(10, 3)
    z_e = torch.randn(2, 3, 4, 5, requires_grad=True)
    z_q, codes, t = vq(z_e)
    flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    brute = torch.cdist(flat, vq.embedding.detach()).argmin(1)            # independent nearest-neighbour search
    assert torch.equal(codes.flatten(), brute)
    e = vq.embedding.detach()[brute].view(2, 4, 5, 3).permute(0, 3, 1, 2)
    torch.testing.assert_close(z_q.detach(), e)                          # values are codebook rows
    torch.testing.assert_close(t["commitment"], ((z_e.detach() - e) ** 2).mean())
    torch.testing.assert_close(t["codebook"], ((z_e.detach() - e) ** 2).mean())
    # straight-through: d z_q / d z_e is the identity
    w = torch.randn_like(z_q)
    (g,) = torch.autograd.grad((z_q * w).sum(), z_e, retain_graph=True)
    torch.testing.assert_close(g, w)
    # the codebook loss moves only the codebook, the commitment loss only the encoder output
    g_cb = torch.autograd.grad(t["codebook"], [z_e, vq.embedding], retain_graph=True, allow_unused=True)
    g_cm = torch.autograd.grad(t["commitment"], [z_e, vq.embedding], allow_unused=True)
    assert g_cb[0] is None and g_cb[1].abs().sum() > 0
    assert g_cm[1] is None and g_cm[0].abs().sum() > 0
    used = torch.zeros(10, dtype=torch.bool)
    used[brute] = True
    assert torch.all(g_cb[1][~used] == 0)                                # unused codes get no gradient


def test_ema_update_follows_its_formula():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, ema=True, decay=0.9, eps=1e-5).train()
    n0, m0 = vq.cluster_size.clone(), vq.embed_sum.clone()
    z_e = torch.randn(1, 2, 3, 3)
    _, codes, t = vq(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    onehot = torch.nn.functional.one_hot(codes.flatten(), 4).float()
    n1 = 0.9 * n0 + 0.1 * onehot.sum(0)
    m1 = 0.9 * m0 + 0.1 * onehot.t() @ flat
    smoothed = (n1 + 1e-5) / (n1.sum() + 4e-5) * n1.sum()
    torch.testing.assert_close(vq.cluster_size, n1)
    torch.testing.assert_close(vq.embedding, m1 / smoothed[:, None])
    assert t["codebook"] == 0 and not any(p.requires_grad for p in [vq.embedding])
    before = vq.embedding.clone()
    vq.eval()(z_e)
    assert torch.equal(vq.embedding, before)                             # no update in eval mode


def _train(out, *extra, model="vq-vae"):
    return main(["train", model, "--data", "digits", "--binarize", "--batch-size", "128", "--out", str(out),
                 "--n-samples", "4", "--no-progress", "--ckpt-every", "1000", "--log-every", "1", "--deterministic",
                 *extra])


def test_vqvae_resume_equals_uninterrupted_run(tmp_path):
    assert _train(tmp_path / "full", "--steps", "4", "--ema", *VQ_TINY) == 0
    assert _train(tmp_path / "half", "--steps", "2", "--ema", *VQ_TINY) == 0
    assert _train(tmp_path / "half", "--steps", "4", "--resume") == 0
    a, b = _final_state(tmp_path / "full"), _final_state(tmp_path / "half")
    _assert_same_state(a, b)
    assert torch.equal(a["model"]["quantizer.cluster_size"], b["model"]["quantizer.cluster_size"])


def test_vqvae_prior_from_run_trains_evaluates_and_samples(tmp_path, capsys):
    vq = tmp_path / "vq"
    assert _train(vq, "--steps", "3", *VQ_TINY) == 0
    assert "reconstruction NLL" in capsys.readouterr().out
    assert main(["eval", str(vq)]) == 0                                  # recon is a VQ-VAE's default metric
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 360 and r["rec_nats"] > 0 and 0 <= r["mse"] <= 1 and 1 <= r["perplexity"] <= 8
    prior = tmp_path / "prior"
    assert main(["train", "vq-vae-prior", "--from", str(vq), "--steps", "2", "--batch-size", "32", "--hidden", "8",
                 "--layers", "2", "--n-samples", "4", "--no-progress", "--out", str(prior)]) == 0
    capsys.readouterr()
    model, source = dgm.load(prior), dgm.load(vq)
    for k, v in source.state_dict().items():                             # the frozen VQ-VAE came along unchanged
        assert torch.equal(model.vq.state_dict()[k], v), k
    x = dgm.load_dataset("digits", "test", binarize="fixed").tensors()[0][:5]
    codes = source.codes(x)
    assert codes.shape == (5, 4, 4) and model.dims == 16
    torch.testing.assert_close(model.log_prob(x), model.prior.log_prob(codes[:, None].float()))
    assert model.sample(3).shape == (3, 1, 8, 8)
    assert main(["eval", str(prior), "--metric", "nll,fid", "-n", "20"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["nll_nats"] > 0 and r["fid"] > 0


def test_vq_user_errors_are_one_line(tmp_path, tiny_run, capsys):
    vq = tmp_path / "vq"
    assert _train(vq, "--steps", "1", *VQ_TINY) == 0
    capsys.readouterr()
    cases = [(["train", "vq-vae-prior", "--steps", "1", "--out", str(tmp_path / "p1")], "--from RUN"),
             (["train", "vq-vae-prior", "--from", str(tiny_run), "--out", str(tmp_path / "p2")], "pass a vq-vae run"),
             (["train", "vae", "--from", str(vq), "--out", str(tmp_path / "p3")], "--from is for"),
             (["sample", str(vq), "--figure", "samples"], "samples through its prior"),
             (["eval", str(tiny_run), "--metric", "recon"], "recon metric is for code models")]
    for argv, words in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and words in err, (argv, err)


@pytest.mark.slow  # multi-process (13-15 s); the default run keeps the engine's and the GAN's DDP checks
def test_vqvae_ema_ddp_two_processes_train_through_the_shared_engine(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgm.cli",
           "train", "vq-vae", "--ema", "--data", "digits", "--binarize", "--batch-size", "64", "--steps", "2",
           "--n-samples", "0", "--no-progress", "--device", "cpu", *VQ_TINY, "--out", str(tmp_path / "ddp")]
    ddp = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert "2 process(es)" in ddp.stdout
    state = _final_state(tmp_path / "ddp")
    assert state["step"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values())
