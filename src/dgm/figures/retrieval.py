"""Text-to-image retrieval of a CLIP run: for each of n test captions, its true image, then the images of the test
split most similar to the caption; the captions, row by row, in a text file beside the PNG."""
from __future__ import annotations

import torch

from .registry import Figure, register, undo_on_failure

TOP = 7  # retrieved images per row


@torch.no_grad()
def _make(model, out, n, seed):
    from ..data.batching import dataset_batches
    from ..nn.blocks import evaluating
    from ..runs import load_data
    from ..viz import save_grid

    data = load_data(model.run_config["data"], "test").with_fixed_draw(torch.Generator().manual_seed(seed))
    x, _ = data.tensors()
    rs = torch.Generator().manual_seed(seed)
    first = {}
    for i in torch.randperm(len(data), generator=rs).tolist():  # n distinct captions, drawn by the seed
        first.setdefault(data.captions[i], i)
        if len(first) == n:
            break
    queries = list(first)
    with evaluating(model):
        img = torch.cat([model.embed_images(b).cpu() for b, _ in dataset_batches(
            torch.utils.data.TensorDataset(x, torch.zeros(len(x))), 256, model.device)])
        txt = model.embed_texts(queries).cpu()
    top = (txt @ img.T).topk(TOP, dim=1).indices
    rows = [torch.cat([x[first[q]][None], x[top[r]]]) for r, q in enumerate(queries)]
    grid = model.to_unit(torch.cat(rows).float())
    text = out.with_suffix(".txt")
    lines = [f"row {r + 1}: {q} (first: its test image; then the {TOP} test images most similar to it; "
             f"hits: {sum(data.captions[int(j)] == q for j in top[r])})" for r, q in enumerate(queries)]
    with undo_on_failure(out, text):
        path = save_grid(grid, out, nrow=TOP + 1)
        text.write_text("\n".join(lines) + "\n")
    return [path, text]


register(Figure("retrieval", ("text_image",), _make, "n test captions (rows): the caption's test image, then the 7 "
                "test images most similar to it (clip); the captions in a .txt beside it", n=8, max_n=100,
                file=lambda model, seed, o: f"retrieval-seed{seed}.png"))
