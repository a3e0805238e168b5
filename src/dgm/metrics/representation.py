"""How much an encoder's code says about the data (ALI / BiGAN, Donahue et al. 2017, sec. 4; Dumoulin et al. 2017,
sec. 4.2): classifiers fitted on codes, and how faithful G(E(x)) is.

For a model with ``encode(x)`` (its first output, the code or the code's mean, flattened):

* ``knn_accuracy`` / ``logistic_accuracy``: a k-nearest-neighbour classifier (Euclidean, k = ``--knn-k``, 1 by
  default as in BiGAN's 1-NN table) and a multinomial logistic regression (L2, C = 1, on codes standardised with the
  train statistics) fitted on the codes of up to ``--probe-train`` train-split examples, scored on the evaluated
  split (test by default). Both are scikit-learn's estimators; ``probe_accuracies`` takes any two feature arrays,
  so raw pixels, PCA or another model's codes are scored by the same code (``benchmarks/representation.py``).
* ``reconstruction_ratio``: mean ||x - G(E(x))|| / mean ||x - G(E(x'))|| over the split, x' the next example of a
  random cyclic order (never x itself), distances on the [0, 1] image scale (points as they are): 0 is exact
  reconstruction, 1 means the reconstruction knows no more of x than of a random other example.
* ``class_preservation``: the share of the split whose reconstruction G(E(x)) the dataset's shipped classifier
  (digits, fashion-mnist) labels with x's true class; ``class_preservation_ceiling``: the same classifier on x.
* On a toy mixture: ``modes``, ``high_quality`` (2,500 samples, as ``--metric modes``) and ``same_mode`` (the share
  of the split's points whose reconstruction lies within 3 std of the mode nearest to the point itself).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch

from ..errors import DgmError
from ..nn.blocks import evaluating
from ..options import Option, at_least
from .modes import HQ_THRESHOLD, N_EVAL_SAMPLES, mode_stats
from .registry import Metric, register

PROBE_TRAIN = 10_000
LOGISTIC_C = 1.0
LOGISTIC_ITERATIONS = 1000


def probe_accuracies(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                     k: int = 1) -> Dict[str, float]:
    """Test accuracy of a k-NN classifier (Euclidean) and of an L2 logistic regression on standardised features,
    both fitted on (train_x, train_y): ``knn_accuracy``, ``logistic_accuracy``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    if len(train_x) <= k:
        raise DgmError(f"the k-NN probe needs more than k = {k} training codes, got {len(train_x)}: lower --knn-k")
    knn = KNeighborsClassifier(n_neighbors=k).fit(train_x, train_y)
    scale = StandardScaler().fit(train_x)
    out = {"knn_accuracy": float((knn.predict(test_x) == test_y).mean())}
    if len(np.unique(train_y)) < 2:  # one class: logistic regression is undefined, every guess is that class
        out["logistic_accuracy"] = float((test_y == train_y[0]).mean())
        return out
    logistic = LogisticRegression(C=LOGISTIC_C, max_iter=LOGISTIC_ITERATIONS)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # the iteration cap is part of the stated protocol
        warnings.simplefilter("ignore", ConvergenceWarning)
        logistic.fit(scale.transform(train_x), train_y)
    out["logistic_accuracy"] = float((logistic.predict(scale.transform(test_x)) == test_y).mean())
    return out


def reconstruction_ratio(x: torch.Tensor, recon: torch.Tensor, recon_other: torch.Tensor) -> float:
    """mean ||x - recon|| / mean ||x - recon_other|| over the batch (rows flattened); nan when the denominator is 0."""
    flat = lambda t: t.reshape(len(t), -1).double()  # noqa: E731
    num = (flat(x) - flat(recon)).norm(dim=1).mean()
    den = (flat(x) - flat(recon_other)).norm(dim=1).mean()
    return float(num / den) if den > 0 else float("nan")


def cyclic_others(n: int, generator: torch.Generator) -> torch.Tensor:
    """For each of n >= 2 examples the index of another one: the next in a random cyclic order (a derangement)."""
    order = torch.randperm(n, generator=generator)
    other = torch.empty(n, dtype=torch.long)
    other[order] = order.roll(-1)
    return other


@torch.no_grad()
def _in_batches(fn, x: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    return torch.cat([fn(x[a:a + batch_size].to(device)).detach().cpu() for a in range(0, len(x), batch_size)])


def _code(model):
    def code(x):
        out = model.encode(x)
        z = out[0] if isinstance(out, (tuple, list)) else out
        return z.reshape(len(z), -1).double()
    return code


def _examples(data, seed: int, limit: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(x, labels) of a split: toy points as they are, images with their random transform drawn once; a random
    subset of ``limit`` (seeded) when the split is larger."""
    if hasattr(data, "points"):
        x, y = data.points, data.labels
    else:
        x, y = data.with_fixed_draw(torch.Generator().manual_seed(seed)).tensors()[:2]
    if limit is not None and len(x) > limit:
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + 1))[:limit].sort().values
        x, y = x[keep], y[keep]
    return x, y


@torch.no_grad()
def representation(model, data, batch_size: int = 256, progress: bool = False, seed: int = 0,
                   probe_train: int = PROBE_TRAIN, knn_k: int = 1) -> Dict:
    """The probes and reconstruction measures of the module docstring, for the evaluated split ``data``."""
    from ..runs import load_data

    if data.split == "train":
        raise DgmError("--metric representation fits its probes on the train split and scores another: use "
                       "--split test or --split val")
    train = load_data(model.run_config["data"], "train")
    points = hasattr(data, "points")
    device = model.device
    with evaluating(model):
        tx, ty = _examples(train, seed, probe_train)
        x, y = _examples(data, seed)
        if len(x) < 2:
            raise DgmError(f"--metric representation needs >= 2 examples in the {data.split} split, got {len(x)}")
        code = _code(model)
        out = probe_accuracies(_in_batches(code, tx, batch_size, device).numpy(), ty.numpy(),
                               _in_batches(code, x, batch_size, device).numpy(), y.numpy(), knn_k)
        out.update(probe_train=len(tx), probe_test=len(x), code_dim=int(code(x[:1].to(device)).shape[1]))
        recon = _in_batches(model.reconstruct, x, batch_size, device).float()
        other = cyclic_others(len(x), torch.Generator().manual_seed(seed + 2))
        unit = (lambda t: t.float()) if points else (lambda t: model.to_unit(t.float()))
        out["reconstruction_ratio"] = reconstruction_ratio(unit(x), unit(recon), unit(recon[other]))
        if points:
            out.update(_toy(model, data, x, recon, seed))
        else:
            out.update(_class_preservation(model, data, x, y, recon, batch_size, device))
    out["protocol"] = (f"codes: encode(x)[0] flattened; probes fitted on {len(tx)} train-split examples (random "
                       f"subset, seed {seed}), scored on the {len(x)} examples of the {data.split} split: "
                       f"{knn_k}-NN (Euclidean) and L2 logistic regression (C={LOGISTIC_C}, standardised codes, "
                       f"<= {LOGISTIC_ITERATIONS} lbfgs iterations); reconstruction_ratio: mean ||x - G(E(x))|| / "
                       f"mean ||x - G(E(x'))||, x' the next example of a random cyclic order"
                       + ("" if points else ", on the [0, 1] image scale"))
    return out


def _toy(model, data, x, recon, seed: int) -> Dict:
    """modes / high_quality of 2,500 samples, and ``same_mode``: the share of points whose reconstruction is within
    3 std of the mode nearest to the point."""
    means = data.means.double()
    nearest = torch.cdist(x.double(), means).argmin(1)
    dist = (recon.double() - means[nearest]).norm(dim=1)
    out = {"same_mode": float((dist < HQ_THRESHOLD * data.std).double().mean())}
    samples = model.sample(N_EVAL_SAMPLES, generator=torch.Generator().manual_seed(seed))
    s = mode_stats(samples.float().cpu(), means, data.std)
    out.update(modes=s["modes"], high_quality=float(s["high_quality"]), num_modes=len(s["counts"]))
    return out


def _class_preservation(model, data, x, y, recon, batch_size: int, device) -> Dict:
    """class_preservation and its ceiling with the dataset's shipped classifier; {} for datasets without one."""
    from .classifiers import CLASSIFIERS, load_classifier

    name = data.name
    if name not in CLASSIFIERS or len(y) == 0:
        return {}
    net = load_classifier(name, device)
    try:
        net.check_input(model.to_unit(x[:1].float()))
    except DgmError:
        return {}

    def label(images):
        return _in_batches(lambda b: net(model.to_unit(b.float()))[1].argmax(1), images, batch_size, device)

    return {"class_preservation": float((label(recon) == y).double().mean()),
            "class_preservation_ceiling": float((label(x) == y).double().mean()), "classifier": name}


def _check(ctx) -> None:
    """A model without an encoder, or without reconstructions, is refused in one line."""
    from .disentanglement import needs_encoder

    needs_encoder(ctx, "representation")
    if ctx.model is not None and not hasattr(ctx.model, "reconstruct"):
        raise DgmError(f"--metric representation also measures reconstructions G(E(x)); this "
                       f"{type(ctx.model).__name__} has no reconstruct(x)")


OPTIONS = (
    Option("probe_train", int, PROBE_TRAIN, "representation: train-split examples the k-NN and logistic probes are "
           "fitted on (a random subset when the split is larger)", check=at_least(2, "--probe-train")),
    Option("knn_k", int, 1, "representation: neighbours of the k-NN probe", check=at_least(1, "--knn-k")),
)
register(Metric("representation", "run", representation, options=(*OPTIONS, "seed"), check=_check,
                help="an encoder's codes: k-NN and logistic accuracy on E(x), reconstruction ratio, class preservation "
                     "of G(E(x)); toy mixtures: modes, high-quality share, same-mode reconstructions"))

__all__ = ["probe_accuracies", "reconstruction_ratio", "cyclic_others", "representation"]
