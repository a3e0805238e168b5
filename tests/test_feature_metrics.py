"""FID, KID and IS on feature arrays equal independent references (scipy sqrtm, numpy brute force)."""
import math
import warnings

import numpy as np
import pytest
import scipy.linalg

from dgm.metrics.features import fid_from_features, frechet_distance, inception_score, kid_from_features


def _fid_scipy(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_equals_scipy_sqrtm_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 16))
    b = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16)) * 0.3 + 0.5
    assert fid_from_features(a, b) == pytest.approx(_fid_scipy(a, b), rel=1e-8)


def test_fid_of_a_set_with_itself_is_zero_and_gaussian_closed_form():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 8))
    assert abs(fid_from_features(a, a)) < 1e-8
    # two Gaussians with diagonal covariances: sum (mu diff)^2 + sum (sqrt(s1) - sqrt(s2))^2
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    want = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-12)


def test_fid_is_robust_to_singular_covariances_and_warns():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(10, 32))  # 10 samples in 32 dimensions: singular covariance
    b = rng.normal(size=(10, 32)) + 0.1
    with pytest.warns(UserWarning, match="feature dimension"):
        v = fid_from_features(a, b)
    assert math.isfinite(v) and v > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fid_from_features(rng.normal(size=(100, 4)), rng.normal(size=(100, 4)))  # no warning when N >= D


def test_fid_grows_with_noise():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2000, 6))
    base = rng.normal(size=(2000, 6))
    vals = [fid_from_features(a, base + s * rng.normal(size=base.shape)) for s in (0.0, 0.5, 1.0, 2.0)]
    assert all(x < y for x, y in zip(vals, vals[1:]))


def _kid_brute(x, y):
    d = x.shape[1]
    m = x.shape[0]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return sxx + syy - 2 * sxy


def test_kid_equals_brute_force_on_one_subset():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 0.3
    mean, std = kid_from_features(x, y, subsets=1, subset_size=30)  # the whole sets: the subset is a permutation
    assert mean == pytest.approx(_kid_brute(x, y), rel=1e-10)
    assert std == 0.0
    # unbiased: near 0 for two independent samples of one distribution (it can be slightly negative)
    a, b = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
    same, same_std = kid_from_features(a, b, subsets=20, subset_size=200)
    shifted, _ = kid_from_features(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3 and shifted > 10 * abs(same)


def test_inception_score_matches_formula_and_bounds():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(200, 10)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mean, _ = inception_score(p, splits=1)
    py = p.mean(0)
    want = math.exp(np.mean([sum(pi[k] * math.log(pi[k] / py[k]) for k in range(10)) for pi in p]))
    assert mean == pytest.approx(want, rel=1e-9)
    # confident and uniform over 10 classes -> 10; all the same class -> 1
    onehot = np.eye(10)[np.arange(1000) % 10]
    assert inception_score(onehot, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    assert inception_score(np.tile(np.eye(10)[3], (100, 1)), splits=2)[0] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="probabilities"):
        inception_score(logits)


def _brute(real, fake, k):
    from scipy.spatial.distance import cdist

    drr, dff, dfr = cdist(real, real), cdist(fake, fake), cdist(fake, real)
    rr = np.sort(drr, 1)[:, k]  # column 0 is the point itself
    rf = np.sort(dff, 1)[:, k]
    precision = np.mean((dfr <= rr[None]).any(1))
    recall = np.mean((dfr.T <= rf[None]).any(1))
    density = (dfr <= rr[None]).sum() / (k * len(fake))
    coverage = np.mean(dfr.min(0) <= rr)
    return rr, precision, recall, density, coverage


def test_chunked_knn_metrics_equal_the_full_distance_matrix():
    import torch

    from dgm.metrics.manifold import density_coverage, knn_radii, manifold_metrics, precision_recall

    rng = np.random.default_rng(6)
    real = rng.normal(size=(300, 8))
    fake = rng.normal(size=(250, 8)) * 1.3 + 0.2
    rr, p, r, d, c = _brute(real, fake, 3)
    tiny = 8 * 300 * 3 * 7  # forces chunks of a few rows
    assert np.allclose(knn_radii(real, 3, budget_bytes=tiny, dtype=torch.float64).numpy(), rr, rtol=1e-12)
    assert precision_recall(real, fake, 3, budget_bytes=tiny, dtype=torch.float64) == pytest.approx((p, r), abs=1e-12)
    _, _, _, d5, c5 = _brute(real, fake, 5)
    assert density_coverage(real, fake, 5, budget_bytes=tiny, dtype=torch.float64) == pytest.approx((d5, c5), abs=1e-12)
    # identical sets: precision = recall = coverage = 1
    pi, ri = precision_recall(real, real, 3)
    assert pi == ri == 1.0 and density_coverage(real, real, 5)[1] == 1.0
    # the combined pass gives the same four numbers in float32 with the default budget
    both = manifold_metrics(real, fake, 3, 5)
    assert both == pytest.approx({"precision": p, "recall": r, "density": d5, "coverage": c5}, abs=1e-12)


class _Passthrough:
    """A torchmetrics 'feature extractor' that hands the given features through unchanged."""

    @staticmethod
    def make(dim):
        import torch

        class P(torch.nn.Module):
            num_features = dim

            def forward(self, x):
                return x

        return P()


def test_fid_kid_is_equal_torchmetrics_on_the_same_features():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchmetrics")
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    rng = np.random.default_rng(11)
    real = rng.normal(size=(400, 16))
    fake = rng.normal(size=(300, 16)) * 1.2 + 0.3
    fid = FrechetInceptionDistance(feature=_Passthrough.make(16))
    fid.update(torch.tensor(real), real=True)
    fid.update(torch.tensor(fake), real=False)
    assert fid_from_features(real, fake) == pytest.approx(fid.compute().item(), rel=1e-8)
    # KID: one subset holding every sample -> no sampling randomness on either side
    kid = KernelInceptionDistance(feature=_Passthrough.make(16), subsets=1, subset_size=300)
    kid.update(torch.tensor(real[:300]), real=True)
    kid.update(torch.tensor(fake), real=False)
    mean, _ = kid_from_features(real[:300], fake, subsets=1, subset_size=300)
    assert mean == pytest.approx(kid.compute()[0].item(), rel=1e-8)
    # IS on logits: torchmetrics applies softmax itself; one split -> no permutation effect
    logits = rng.normal(size=(500, 10)) * 3
    isc = InceptionScore(feature=_Passthrough.make(10), splits=1)
    isc.update(torch.tensor(logits))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert inception_score(probs, splits=1)[0] == pytest.approx(isc.compute()[0].item(), rel=1e-6)
