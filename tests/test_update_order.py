"""--update-order: alternating (G against the D this step just updated) against simultaneous (G's gradient taken
against D as it was before the step's D update, as in the GDPP and PacGAN/ALI toy-mixture code)."""
import pytest
import torch

from dgm.cli import main
from dgm.errors import DgmError
from dgm.runs import load


def _one_step(tmp_path, name, order, lr_d, *extra):
    out = tmp_path / name
    assert main(["train", "gan", "--data", "ring8", "--batch-size", "64", "--hidden", "16", "--layers", "2",
                 "--steps", "1", "--lr-d", str(lr_d), "--lr-g", "1e-2", "--update-order", order, "--no-progress",
                 "--n-samples", "0", "--deterministic", "--out", str(out), *extra]) == 0
    m = load(out)
    # D's parameters only: spectral norm's power-iteration vector is a buffer that G's pass also advances under
    # the alternating order (on the real D) but not under the simultaneous one (on the copy)
    return m.generator.state_dict(), {k: p.detach() for k, p in m.discriminator.named_parameters()}


def _equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("extra", [["--objective", "non-saturating"],
                                   pytest.param(["--objective", "hinge", "--spectral-norm"], marks=pytest.mark.slow),
                                   ["--objective", "wgan-gp", "--n-critic", "1"]])
def test_simultaneous_g_step_does_not_see_this_steps_d_update(tmp_path, extra):
    """After one step G's weights do not depend on D's learning rate under the simultaneous order (its gradient
    comes from D before D's step) and do under the alternating order; D's own update is the same in both orders."""
    g_small, d_small = _one_step(tmp_path, "s1", "simultaneous", 1e-4, *extra)
    g_big, d_big = _one_step(tmp_path, "s2", "simultaneous", 0.5, *extra)
    assert _equal(g_small, g_big)
    assert not _equal(d_small, d_big)  # the D learning rate did change D
    a_small, ad_small = _one_step(tmp_path, "a1", "alternating", 1e-4, *extra)
    a_big, _ = _one_step(tmp_path, "a2", "alternating", 0.5, *extra)
    assert not _equal(a_small, a_big)
    assert _equal(ad_small, d_small)


def test_simultaneous_unrolling_starts_from_d_before_its_update(tmp_path):
    """Unrolled G loss under the simultaneous order: the differentiable copies start from D's pre-update
    parameters, so G's step differs from the alternating order's (which starts from the updated D)."""
    g_sim, d_sim = _one_step(tmp_path, "s", "simultaneous", 1e-2, "--unroll-steps", "1")
    g_alt, d_alt = _one_step(tmp_path, "a", "alternating", 1e-2, "--unroll-steps", "1")
    assert _equal(d_sim, d_alt) and not _equal(g_sim, g_alt)


@pytest.mark.parametrize("model", ["infogan", "ssgan"])
def test_other_gan_steps_refuse_the_simultaneous_order(model):
    from dgm.models.infogan import InfoGANConfig
    from dgm.models.ssgan import SSGANConfig

    cls, kw = {"infogan": (InfoGANConfig, {"cat_codes": 2}), "ssgan": (SSGANConfig, {"num_classes": 10})}[model]
    with pytest.raises(DgmError, match="--update-order simultaneous"):
        cls(update_order="simultaneous", **kw)


def test_an_unknown_order_is_refused():
    from dgm.models.gan import GANConfig

    with pytest.raises(DgmError, match="--update-order must be one of"):
        GANConfig(update_order="both")
