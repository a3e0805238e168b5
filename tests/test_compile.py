"""--compile (dgm.compiling) and --amp on a CPU: compiled results equal eager ones, checkpoints keep the plain
parameter names (a compiled run's checkpoint loads into an eager model and back, and resumes either way), a compiler
that fails or is missing gives one warning line and the eager results, and --amp on a CPU without native bf16 is
refused in one line.

Inductor's C++ code generation takes tens of seconds on 2 cores, so one test compiles with it (a tiny PixelCNN's
log-likelihood and gradients); the others use the "aot_eager" backend, the same graph capture (dynamo) and autograd
(AOTAutograd) without inductor. The inductor checks of a VAE's and a GAN's losses and of a compiled CLI run are
marked slow."""
from __future__ import annotations

import json

import pytest
import torch

from dgm import compiling, devices
from dgm.cli import main
from dgm.models import build_model
from dgm.training.steps import ModelCall

from conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")
COMMON = ["--threads", "1", "--no-progress", "--n-samples", "0", "--seed", "0"]
TRAIN = ["--data", "digits", "--binarize", *TINY, "--batch-size", "32", *COMMON]


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """Dynamo's caches emptied (each test compiles other models through the same code) and the once-per-process
    warning re-armed; the quick backend unless a test asks for inductor."""
    torch._dynamo.reset()
    monkeypatch.setattr(compiling, "_warned", False)
    monkeypatch.setattr(compiling, "BACKEND", "aot_eager")
    yield
    torch._dynamo.reset()


def _digits(n=16, seed=0):
    return torch.randint(0, 2, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed)).float()


def _pixelcnn():
    torch.manual_seed(0)
    return build_model("pixelcnn", {"channels": 1, "height": 8, "width": 8, "levels": 2, "hidden": 4, "layers": 1,
                                    "first_kernel": 3})


def _value_and_grads(fn, model, *args):
    model.zero_grad()
    out = fn(*args)
    loss = sum(v.float().sum() for v in (out.values() if isinstance(out, dict) else [out]) if v.requires_grad)
    loss.backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_close(a, b, **tol):
    assert set(a) == set(b) and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol)


@pytest.mark.slow  # inductor compiles C++ for 30-60 s from a cold cache (a fresh CI machine)
def test_inductor_pixelcnn_log_prob_and_gradients_equal_eager(monkeypatch):
    monkeypatch.setattr(compiling, "BACKEND", "inductor")
    model, x = _pixelcnn(), _digits()
    eager, g_eager = _value_and_grads(ModelCall(model, "training_log_prob"), model, x, None)
    comp, g_comp = _value_and_grads(compiling.compiled(ModelCall(model, "training_log_prob")), model, x, None)
    torch.testing.assert_close(comp, eager, rtol=1e-5, atol=1e-4)
    _assert_close(g_comp, g_eager, rtol=1e-4, atol=1e-5)


def _losses(name, method, opts, x, backend, monkeypatch):
    monkeypatch.setattr(compiling, "BACKEND", backend)
    torch.manual_seed(0)
    model = build_model(name, {"channels": 1, "height": 8, "width": 8, "levels": 2, **opts})
    torch.manual_seed(1)  # the same reparameterisation noise in both passes
    eager = _value_and_grads(ModelCall(model, method), model, x)
    torch.manual_seed(1)
    comp = _value_and_grads(compiling.compiled(ModelCall(model, method)), model, x)
    return eager, comp


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_vae_elbo_terms_and_gradients_equal_eager(backend, monkeypatch):
    (e, ge), (c, gc) = _losses("vae", "elbo_terms", {"hidden": 16, "latent_dim": 2}, _digits(), backend, monkeypatch)
    _assert_close(c, e, rtol=1e-5, atol=1e-4)
    _assert_close(gc, ge, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_gan_losses_equal_eager(backend, monkeypatch, tmp_path, capsys):
    """A whole compiled GAN step (G and D compiled, the optimizer eager) logs D's and G's losses of the eager run."""
    monkeypatch.setattr(compiling, "BACKEND", backend)
    rows = {}
    for flag in ("--no-compile", "--compile"):
        out = tmp_path / flag
        assert main(["train", "gan", "--data", "digits", "--hidden", "8", "--latent-dim", "4", "--layers", "1",
                     "--batch-size", "16", "--steps", "4", "--log-every", "1", *COMMON, "--out", str(out),
                     flag]) == 0
        rows[flag] = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                      if r["split"] == "train"]
    assert "warning" not in capsys.readouterr().err
    for a, b in zip(rows["--compile"], rows["--no-compile"]):
        for k in ("loss_d", "d_real", "d_fake", "loss_g"):
            if k in b:
                assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), k


def _train(out, *extra):
    return main(["train", "pixelcnn", *TRAIN, "--out", str(out), *extra])


def _final(run):
    from dgm.checkpoint import latest_checkpoint, load_checkpoint

    return load_checkpoint(latest_checkpoint(run))


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_compiled_checkpoints_have_plain_names_and_resume_either_way(backend, tmp_path, monkeypatch, capsys):
    """Uninterrupted eager == compiled then resumed eager == eager then resumed compiled (weights, Adam's moments);
    a compiled run's checkpoint loads into an eager model (dgm.load) and has no _orig_mod. in its names."""
    monkeypatch.setattr(compiling, "BACKEND", backend)
    assert _train(tmp_path / "eager", "--steps", "6") == 0
    assert _train(tmp_path / "a", "--steps", "3", "--compile") == 0
    state = _final(tmp_path / "a")
    assert not [k for k in state["model"] if "_orig_mod" in k]
    from dgm import load

    assert set(state["model"]) == set(load(tmp_path / "a").state_dict())  # loads into an eager model
    assert _train(tmp_path / "a", "--steps", "6", "--resume", "--no-compile") == 0  # compiled -> eager
    assert _train(tmp_path / "b", "--steps", "3") == 0
    assert _train(tmp_path / "b", "--steps", "6", "--resume", "--compile") == 0  # eager -> compiled
    assert "warning" not in capsys.readouterr().err
    ref = _final(tmp_path / "eager")
    for run in ("a", "b"):
        got = _final(tmp_path / run)
        assert got["step"] == 6
        _assert_close(got["model"], ref["model"], rtol=1e-5, atol=1e-6)
        moments = lambda s: {f"{i}.{k}": v for i, st in s["optimizers"]["model"]["state"].items()  # noqa: E731
                             for k, v in st.items()}
        _assert_close(moments(got), moments(ref), rtol=1e-5, atol=1e-7)
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["train"]["compile"] is True  # the resume's (a resume without the flag keeps the saved choice)


def test_a_compiled_modules_state_dict_loads_with_plain_names(tmp_path):
    """A state_dict written from a torch.compile-d module (its names start with _orig_mod.) loads into the model."""
    from dgm.checkpoint import load_weights

    model, other = _pixelcnn(), _pixelcnn()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    prefixed = torch.compile(other).state_dict()  # not called: nothing is compiled
    assert all(k.startswith("_orig_mod.") for k in prefixed)
    load_weights(model, prefixed, tmp_path / "x.pt")
    _assert_close(model.state_dict(), other.state_dict())


def _refusing_compile(*args, **kwargs):
    raise RuntimeError("Dynamo is not supported on this Python\nsecond line")


def _failing_call(*args, **kwargs):
    def run(*a, **k):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")
    return run


@pytest.mark.parametrize("compile_fn", [_refusing_compile, _failing_call], ids=["at-compile", "at-first-call"])
def test_a_failing_compiler_warns_once_and_gives_the_eager_results(compile_fn, tmp_path, monkeypatch, capsys):
    assert _train(tmp_path / "eager", "--steps", "3") == 0
    monkeypatch.setattr(torch, "compile", compile_fn)
    assert _train(tmp_path / "c", "--steps", "3", "--compile") == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "--compile" in ln]
    assert len(lines) == 1 and lines[0].startswith("dgm: warning: --compile: ") and "running eagerly" in lines[0]
    assert "Traceback" not in err
    _assert_close(_final(tmp_path / "c")["model"], _final(tmp_path / "eager")["model"], rtol=0, atol=0)
    assert main(["sample", str(tmp_path / "c"), "--compile", "-n", "2", "--out", str(tmp_path / "s.png"),
                 "--threads", "1"]) == 0
    assert "Traceback" not in capsys.readouterr().err


class _BackwardFails(torch.autograd.Function):
    """Identity whose backward fails as AOTAutograd's lazily compiled backward can (at the first backward)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise torch._dynamo.exc.InternalTorchDynamoError("the backward graph did not compile\nmore")


def test_a_backward_that_fails_to_compile_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compiling, "_compile", lambda fn, what: lambda *a, **k: _BackwardFails.apply(fn(*a, **k)))
    code, err = _err(capsys, ["train", "pixelcnn", *TRAIN, "--steps", "2", "--compile", "--out", str(tmp_path / "r")])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("dgm: error: --compile: the backward pass could not be compiled (InternalTorchDynamoError: "
                          "the backward graph did not compile); run without --compile")


def test_a_gan_with_a_gradient_penalty_compiles_g_and_keeps_its_critic_eager(tmp_path, monkeypatch, capsys):
    """WGAN-GP differentiates D's input gradient again (no double backward through compiled graphs): only G is
    compiled, and the run equals the eager one."""
    wrapped = []
    real = compiling.compiled
    monkeypatch.setattr(compiling, "compiled", lambda module, what="": wrapped.append(type(module).__name__) or
                        real(module, what))
    losses = {}
    for flag in ("--no-compile", "--compile"):
        out = tmp_path / flag
        assert main(["train", "gan", "--objective", "wgan-gp", "--data", "digits", "--hidden", "8", "--latent-dim", "4",
                     "--layers", "1", "--batch-size", "16", "--steps", "3", *COMMON, "--out", str(out), flag]) == 0
        row = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()][0]
        losses[flag] = {k: v for k, v in row.items() if k not in ("time", "images_per_sec")}
    assert wrapped == ["DCGANGenerator"] and "warning" not in capsys.readouterr().err
    assert losses["--compile"] == pytest.approx(losses["--no-compile"], rel=1e-5)


def test_a_models_own_refusal_is_not_taken_for_a_compiler_failure(capsys):
    from dgm.models.base import InputError

    model = compiling.compile_model(_pixelcnn())
    with pytest.raises(InputError, match="integer levels"):
        model.log_prob(torch.full((2, 1, 8, 8), 5.0))
    assert "warning" not in capsys.readouterr().err


@pytest.mark.slow  # multi-second; moved out of the default run to keep it under 10 minutes
def test_sample_and_eval_with_compile_equal_eager(tiny_run, tmp_path, capsys):
    for flag in ([], ["--compile"]):
        assert main(["sample", str(tiny_run), "-n", "4", "--naive", "--threads", "1",
                     "--out", str(tmp_path / f"s{len(flag)}.png"), *flag]) == 0
        assert main(["eval", str(tiny_run), "--metric", "nll", "--threads", "1", *flag]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.err
    assert (tmp_path / "s0.png").read_bytes() == (tmp_path / "s1.png").read_bytes()
    nll = [json.loads(ln)["nll_nats"] for ln in out.out.splitlines() if ln.startswith("{")]
    assert len(nll) == 2 and nll[1] == pytest.approx(nll[0], rel=1e-6)


def test_compile_targets_are_the_outermost_networks():
    assert compiling.compile_model(_pixelcnn()).compile_targets()[0].__class__.__name__ == "PixelCNN"
    gan = build_model("gan", {"channels": 1, "height": 8, "width": 8, "levels": 17, "hidden": 8, "latent_dim": 4,
                              "layers": 1})
    assert {type(t).__name__ for t in gan.compile_targets()} == {type(gan.generator).__name__,
                                                               type(gan.discriminator).__name__}
    before = set(gan.state_dict())
    compiling.compile_model(gan)
    assert set(gan.state_dict()) == before  # in place: the same names


def test_sample_and_eval_compile_trace_torch_modules_too(monkeypatch):
    """A VAE's encoder and decoder are nn.Sequential (torch's own code, which dynamo does not trace as a top frame):
    compile_model still captures their graphs, and log_prob and sample equal eager."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    monkeypatch.setattr(compiling, "BACKEND", backend)
    torch.manual_seed(0)
    vae = build_model("vae", {"channels": 1, "height": 8, "width": 8, "levels": 2, "hidden": 16, "latent_dim": 2})
    x = _digits()

    def calls():
        return (vae.log_prob(x, generator=torch.Generator().manual_seed(3)),
                vae.sample(4, generator=torch.Generator().manual_seed(4)))

    with torch.no_grad():
        eager = calls()
        compiling.compile_model(vae)
        comp = calls()
    assert len(graphs) >= 2
    for a, b in zip(comp, eager):
        torch.testing.assert_close(a, b)


def _err(capsys, argv):
    code = main(argv)
    return code, capsys.readouterr().err


def test_amp_on_a_cpu_without_native_bf16_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: False)
    code, err = _err(capsys, ["train", "pixelcnn", *TRAIN, "--steps", "1", "--amp", "--device", "cpu",
                              "--out", str(tmp_path / "r")])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("dgm: error: --amp on this CPU") and "measured" in err and "x the" in err
    assert "avx512_bf16" in err and "drop --amp" in err


def test_amp_on_a_cpu_with_native_bf16_trains_in_bf16(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: True)
    from dgm.training.engine import Trainer

    seen, autocast = [], Trainer.autocast

    def spy(self):
        seen.append((self.device.type, self.amp_dtype))
        return autocast(self)

    monkeypatch.setattr(Trainer, "autocast", spy)
    assert _train(tmp_path / "r", "--steps", "2", "--amp", "--device", "cpu") == 0
    assert seen and set(seen) == {("cpu", torch.bfloat16)}
    row = [json.loads(ln) for ln in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()][-1]
    assert all(v == v for v in row.values() if isinstance(v, float))  # finite: no NaN


def test_eval_compile_needs_a_run(tmp_path, capsys):
    import numpy as np

    np.save(tmp_path / "f.npy", np.zeros((4, 1, 8, 8), dtype=np.float32))
    code, err = _err(capsys, ["eval", "--real", "digits", "--fake", str(tmp_path / "f.npy"), "--compile"])
    assert code == 2 and "--compile" in err and err.count("\n") == 1
