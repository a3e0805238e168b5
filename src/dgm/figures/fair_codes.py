"""The test split's codes of a fair representation (fair): their first two principal components, coloured by the
sensitive attribute, with the predicted label as the marker; the title gives the accuracy and the parity gap."""
from __future__ import annotations

import torch

from .registry import Figure, register, undo_on_failure


@torch.no_grad()
def _make(model, out, n, seed):
    from ..metrics.fairness import _codes_and_logits, gaps
    from ..runs import load_data
    from ..viz.toy import _require_plt, _save

    data = load_data(model.run_config["data"], "test")
    keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    z, logit = _codes_and_logits(model, data.points)
    g = gaps((logit > 0).long(), data.labels, data.sensitive)
    zc = z - z.mean(0)
    pcs = zc @ torch.linalg.svd(zc, full_matrices=False).Vh[:2].T if z.shape[1] > 1 else torch.cat([zc, zc * 0], 1)
    plt = _require_plt()
    with undo_on_failure(out):
        fig, ax = plt.subplots(figsize=(5.5, 4.8), dpi=110)
        for pred, marker in ((0, "o"), (1, "x")):
            sel = keep[(logit[keep] > 0).long() == pred]
            ax.scatter(pcs[sel, 0], pcs[sel, 1], c=data.sensitive[sel], cmap="coolwarm", vmin=0, vmax=1, s=10,
                       marker=marker, alpha=0.6, label=f"predicted y = {pred}")
        ax.legend(loc="upper right")
        ax.set_title(f"codes (PCA), colour: sensitive attribute\naccuracy {g['accuracy']:.3f}, parity gap "
                     f"{g['dp_gap']:.3f}")
        return [_save(plt, fig, out)]


register(Figure("fair-codes", ("fair",), _make, "fair representations (fair): n test codes on their first two "
                "principal components, coloured by the sensitive attribute, marked by the predicted label", n=1000,
                file=lambda model, seed, o: f"fair-codes-seed{seed}.png"))
