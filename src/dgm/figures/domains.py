"""What a domain-adaptation run (adapt) predicts on the target's test split: for images one row per class of up to
n target images it calls that class; for 2-D points the source and target test points coloured by the predicted
class."""
from __future__ import annotations

import torch

from .registry import Figure, register, undo_on_failure


def _predict(model, x, domain):
    return torch.cat([model.classify(x[s:s + 512].to(model.device), domain).argmax(1).cpu()
                      for s in range(0, len(x), 512)])


@torch.no_grad()
def _make(model, out, n, seed):
    from ..runs import load_data

    data = load_data(model.run_config["data"], "test")
    xt, yt = data.domain("target")
    pred = _predict(model, xt, "target")
    acc = float((pred == yt).float().mean())
    if model.points:
        from ..viz.toy import _require_plt, _save

        plt = _require_plt()
        xs, _ = data.domain("source")
        ps = _predict(model, xs, "source")
        with undo_on_failure(out):
            fig, ax = plt.subplots(figsize=(5.5, 4.8), dpi=110)
            ax.scatter(xs[:, 0], xs[:, 1], c=ps, cmap="coolwarm", marker="x", s=8, alpha=0.35, label="source")
            ax.scatter(xt[:, 0], xt[:, 1], c=pred, cmap="coolwarm", marker="o", s=8, label="target")
            ax.legend(loc="upper right")
            ax.set_title(f"predicted classes; target accuracy {acc:.3f}")
            return [_save(plt, fig, out)]
    from ..viz import save_grid

    k = model.config.num_classes
    rows = []
    for c in range(k):
        x = xt[pred == c][:n]
        pad = torch.zeros((n - len(x),) + tuple(xt.shape[1:]))
        rows.append(torch.cat([model.to_unit(x), pad]))
    with undo_on_failure(out):
        return [save_grid(torch.cat(rows), out, nrow=n)]


register(Figure("domains", ("adapt",), _make, "domain adaptation (adapt): row k holds up to n target test images the "
                "classifier calls class k; for 2-D points both domains' test points coloured by the predicted class",
                n=10, file=lambda model, seed, o: "domains.png"))
