"""Class-conditional SAGAN, BigGAN, ProGAN and StyleGAN (issue 16: conditioning for every GAN architecture), with
each of --cond concat | projection | ac: D's output depends on the label, G's on y, two training steps with three
objective families, sampling the labels asked for, resume, and the refusals that remain."""
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import torchrun
from dgm.cli import main
from dgm.models import build_model
from dgm.models.gan_nets.base import label_channels

DIGITS = dict(channels=1, height=8, width=8, levels=17, num_classes=10)
MODES = ("concat", "projection", "ac")
ARCHS = {  # the smallest configs each architecture accepts on 8x8 digits
    "sagan": dict(),
    "biggan": dict(latent_dim=6),
    "progan": dict(phase_images=8),
    "stylegan": dict(mapping_layers=2, latent_dim=6),
}
FLAGS = {"sagan": [], "biggan": [], "progan": ["--phase-images", "8"], "stylegan": ["--mapping-layers", "2"]}


def _gan(arch, cond, **opts):
    torch.manual_seed(0)
    cfg = dict(DIGITS, arch=arch, hidden=4, latent_dim=4, conditional=True, cond=cond)
    cfg.update(ARCHS[arch], **opts)
    return build_model("gan", cfg).eval()


def _images(n=4):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("cond", MODES)
@pytest.mark.parametrize("arch", list(ARCHS))
def test_d_and_g_read_the_labels_and_sample_returns_the_requested_shape(arch, cond):
    m = _gan(arch, cond)
    d, g = m.discriminator, m.generator
    x, a, b = _images(), torch.zeros(4, dtype=torch.long), torch.full((4,), 7)
    with torch.no_grad():
        if cond == "ac":  # the score ignores y; D's word on y is its class head's log p(y | x)
            logp = d.class_logits(x).log_softmax(1)
            out_a, out_b = logp[:, 0], logp[:, 7]
            assert torch.equal(d(x, a), d(x, b))
        else:
            out_a, out_b = d(x, a), d(x, b)
        assert out_a.shape == (4,) and (out_a - out_b).abs().min() > 0
        if cond == "concat":  # D's first layer reads the K one-hot label planes
            assert label_channels(m.config) == 10
        z = torch.randn(4, m.config.latent_dim, generator=torch.Generator().manual_seed(2))
        for p in g.parameters():  # a fresh conditional batch norm is plain BN (zero maps): as after some training
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        ga, gb = g(z, a), g(z, b)
    assert ga.shape == (4, 1, 8, 8) and (ga - gb).abs().max() > 0
    s = m.sample(3, y=torch.tensor([1, 2, 3]), generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, 1, 8, 8) and torch.isfinite(s).all()
    assert m.sample(5, y=4).shape == (5, 1, 8, 8)
    with pytest.raises(ValueError, match="labels"):
        g(z)


@pytest.mark.slow  # 11 s; that D and G read the labels is proved per architecture and --cond above
def test_g_conditioning_per_architecture():
    """sagan: one-hot CBN (projection / ac) or [z, embed(y)] (concat); biggan: shared embedding into every CBN, or
    with concat into the input layer only; progan: [z, one-hot(y)] pixel-normalised together; stylegan: the
    mapping network reads [pixel_norm(z), pixel_norm(embed(y))]."""
    from dgm.nn.conditional import ConditionalBatchNorm
    from dgm.nn.equalized import pixel_norm
    from dgm.nn.resample import upsample

    def cbns(m):
        return [l for l in m.generator.modules() if isinstance(l, ConditionalBatchNorm)]

    assert cbns(_gan("sagan", "ac")) and not cbns(_gan("sagan", "concat"))
    assert all(l.gain.in_features == 10 for l in cbns(_gan("sagan", "projection")))
    assert _gan("sagan", "concat").generator.project[0].in_features == 4 + 10
    bp, bc = _gan("biggan", "projection").generator, _gan("biggan", "concat").generator
    assert bc.project.in_features == bc.chunks[0] + bc.embed[0].embedding_dim
    assert [b.bn1.gain.in_features for b in bc.blocks] == bc.chunks[1:]  # z chunks only
    assert [b.bn1.gain.in_features for b in bp.blocks] == [c + bp.embed[0].embedding_dim for c in bp.chunks[1:]]
    for cond in MODES:
        pg = _gan("progan", cond).generator
        assert pg.dense.in_features == 4 + 10
        z, y = torch.randn(2, 4), torch.tensor([3, 5])
        with torch.no_grad():  # the one-hot joins z before the pixel norm: G(z, y) = at([z, e_y])
            level, alpha = pg.stage
            want = pg.at(torch.cat([z, torch.eye(10)[y]], 1), level, alpha)
            for _ in range(level, pg.levels - 1):
                want = upsample(want)  # to the data size, as G's forward does
            assert torch.equal(pg(z, y), want)
    sg = _gan("stylegan", "ac").generator
    z, y = torch.randn(3, 6), torch.tensor([0, 4, 9])
    with torch.no_grad():
        want = sg.mapping.net(torch.cat([pixel_norm(z), pixel_norm(sg.embed(y))], 1))
        assert torch.equal(sg.map(z, y), want)


def _train(out, arch, *extra):
    args = ["train", "gan", "--data", "digits", "--arch", arch, "--batch-size", "8", "--hidden", "4",
            "--latent-dim", "6", "--no-progress", "--n-samples", "0", "--conditional", "--out", str(out),
            *FLAGS[arch], *extra]
    assert main(args) == 0


_ALL = [(a, c, o) for a in ARCHS for c in MODES for o in ("non-saturating", "hinge")]
_ALL += [("sagan", "concat", "wgan-gp"), ("biggan", "ac", "wgan-gp"), ("progan", "projection", "wgan-gp"),
         ("stylegan", "concat", "wgan-gp")]
# the default run keeps a cover (every architecture, every --cond and every objective family at least once; the
# cheap-to-build models more often); the other combinations run with -m slow (they took 80 s of the default suite)
_DEFAULT = {("sagan", "concat", "non-saturating"), ("sagan", "ac", "hinge"), ("biggan", "projection", "hinge"),
            ("progan", "ac", "non-saturating"), ("progan", "projection", "wgan-gp"),
            ("stylegan", "projection", "non-saturating"), ("stylegan", "concat", "wgan-gp")}
RUNS = [r if r in _DEFAULT else pytest.param(*r, marks=pytest.mark.slow) for r in _ALL]


@pytest.mark.parametrize("arch,cond,objective", RUNS)
def test_two_training_steps(tmp_path, arch, cond, objective):
    import dgm

    out = tmp_path / "run"
    _train(out, arch, "--cond", cond, "--objective", objective, "--steps", "2", "--n-critic", "1")
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert train and all(math.isfinite(r["loss_d"]) for r in train)
    assert ("class_loss_d" in train[-1]) == (cond == "ac")
    m = dgm.load(out)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    threes = m.sample(4, y=torch.full((4,), 3), generator=gen())
    assert threes.shape == (4, 1, 8, 8) and torch.isfinite(threes).all()
    assert torch.equal(m.sample(4, generator=gen()), m.sample(4, y=torch.arange(4), generator=gen()))


def _final(run):
    return torch.load(sorted((Path(run) / "checkpoints").glob("ckpt-*.pt"))[-1], weights_only=True)


def test_conditional_stylegan_resumes_bit_for_bit(tmp_path):
    common = ["--cond", "concat", "--style-mix-prob", "0.5", "--r1-every", "2", "--ckpt-every", "2",
              "--deterministic"]
    _train(tmp_path / "full", "stylegan", *common, "--steps", "4")
    _train(tmp_path / "half", "stylegan", *common, "--steps", "2")
    assert main(["train", "gan", "--out", str(tmp_path / "half"), "--resume", "--steps", "4", "--no-progress"]) == 0
    a, b = _final(tmp_path / "full"), _final(tmp_path / "half")
    assert a["step"] == b["step"] == 4 and set(a["model"]) == set(b["model"])
    assert "generator.embed.weight" in a["model"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_conditional_stylegan_truncates_and_draws_its_figures_per_label():
    from dgm.sampling.style import noise_sweep, style_mixing_grid

    m = _gan("stylegan", "projection")
    for p in m.generator.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = m.sample(3, y=torch.tensor([0, 0, 0]), truncation=0.5, generator=gen())
    b = m.sample(3, y=torch.tensor([6, 6, 6]), truncation=0.5, generator=gen())
    assert a.shape == (3, 1, 8, 8) and (a - b).abs().max() > 0
    images, cols = style_mixing_grid(m, 2, generator=gen())
    assert images.shape[0] == 7 * cols and cols == 3
    assert noise_sweep(m, rows=2, draws=2, std_draws=4, generator=gen())[0].shape[0] == 2 * 3


@pytest.mark.parametrize("argv,msg", [
    (["--arch", "stylegan", "--mapping-layers", "0"], "--mapping-layers 1 or more"),
    (["--arch", "biggan", "--cond", "concat", "--no-shared-embed"], "enters once"),
])
def test_what_still_does_not_apply_is_a_one_line_error(tmp_path, capsys, argv, msg):
    assert main(["train", "gan", "--data", "digits", "--conditional", *argv, "--steps", "1",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dgm: error:") and msg in err and err.count("\n") == 1


# recorded on the code before these architectures were conditional (main at 2c38bf6): (number of state_dict keys,
# sha1 of the sorted keys joined by spaces, first 16 hex digits); old unconditional checkpoints must keep loading
OLD_KEYS = {"sagan": (69, "fbed39e1ba748806"), "biggan": (111, "d7eb593fbe08a014"),
            "progan": (28, "7c2716d822076dba"), "stylegan": (40, "ad80af74a11085c0")}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_unconditional_models_keep_their_state_dict_keys(arch):
    import hashlib

    cfg = dict(DIGITS, arch=arch, hidden=4, latent_dim=4)
    cfg.update(ARCHS[arch])
    keys = sorted(build_model("gan", cfg).state_dict())
    assert not any("embed" in k or "class_head" in k for k in keys)
    assert (len(keys), hashlib.sha1(" ".join(keys).encode()).hexdigest()[:16]) == OLD_KEYS[arch]


@pytest.mark.slow
def test_ddp_conditional_stylegan_two_processes_equal_one_process(tmp_path):
    # StyleGAN's G has no batch norm (per-process statistics would differ); --no-const-input: see test_stylegan.py
    common = ["train", "gan", "--arch", "stylegan", "--data", "digits", "--steps", "2", "--batch-size", "8",
              "--hidden", "4", "--latent-dim", "8", "--mapping-layers", "2", "--style-mix-prob", "0.5",
              "--no-const-input", "--conditional", "--cond", "projection", "--objective", "hinge", "--no-progress",
              "--n-samples", "0", "--device", "cpu"]
    torchrun(common, tmp_path / "ddp")
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = _final(tmp_path / "ddp"), _final(tmp_path / "one")
    assert "generator.embed.weight" in a["model"] and "discriminator.embed.weight" in a["model"]
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-5), k
