"""Input / translation / reconstruction triplets of a translation run, both directions
(``dgm.sampling.translate``)."""
from __future__ import annotations

from pathlib import Path

from ..options import Option
from .registry import Figure, register, undo_on_failure


def _base(out) -> str:
    return str(out)[:-4] if str(out).lower().endswith(".png") else str(out)


def _make(model, out, n, seed, translate="test"):
    from ..sampling.translate import save_translation_grids

    with undo_on_failure(f"{_base(out)}-x_to_y.png", f"{_base(out)}-y_to_x.png"):
        return save_translation_grids(model, translate, n, out)


register(Figure("translate", ("translate",), _make, "translation runs (cyclegan): input / translation / "
                "reconstruction triplets of both directions for n images of the run's test split or of a folder",
                options=(Option("translate", str, "test", "the images: the run's test split or a folder of "
                                "PNG/JPEG files", metavar="test|FOLDER"),),
                file=lambda model, seed, o: "translate-{}.png".format(
                    "test" if o["translate"] == "test" else Path(o["translate"]).name),
                selected_by="translate"))
