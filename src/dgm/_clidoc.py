"""docs/cli.md, generated from the parsers of dgm's command line so that it cannot drift from them:

    python -m dgm._clidoc > docs/cli.md

(tests/test_cli_docs.py checks that the committed file equals this text). Every command's --help, then the options
each model adds to `dgm train MODEL` (the GAN's per architecture), then what `dgm list` prints.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
from typing import List

WIDTH = "100"  # help text is wrapped at this width whatever the terminal
COMMANDS = (("dgm", ["--help"]), ("dgm train", ["train", "--help"]), ("dgm sample", ["sample", "--help"]),
            ("dgm eval", ["eval", "--help"]), ("dgm bench", ["bench", "--help"]), ("dgm list", ["list", "--help"]))
LISTS = ("models", "datasets", "figures", "metrics", "features", "families", "objectives", "archs", "regularisers",
         "orders")


def _printed(argv: List[str]) -> str:
    """What `dgm ARGV` prints on standard output (help exits through SystemExit)."""
    from .cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        main(argv)
    return buf.getvalue().rstrip()


def _train_parser(argv: List[str]) -> argparse.ArgumentParser:
    from .cli import _build_parser

    top = _build_parser(["train", *argv])
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _own_groups(parser: argparse.ArgumentParser, common: set) -> str:
    """The help of the option groups a model adds to `dgm train` (those not in ``common``)."""
    fmt = parser._get_formatter()
    for group in parser._action_groups:
        if group.title in common or not group._group_actions:
            continue
        fmt.start_section(group.title)
        fmt.add_text(group.description)
        fmt.add_arguments(group._group_actions)
        fmt.end_section()
    return fmt.format_help().strip()


def _block(text: str) -> List[str]:
    return ["```text", text, "```", ""]


def reference() -> str:
    """The whole of docs/cli.md."""
    from .models import MODELS
    from .models.gan_nets import GAN_ARCHS
    from .objectives import OBJECTIVES

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        out = ["# Command-line reference", "",
               "Generated from dgm's parsers by `python -m dgm._clidoc > docs/cli.md`; a test checks that this file "
               "is current, so do not edit it by hand. The README shows the common commands; "
               "[design.md](design.md) how options come from the registries.", ""]
        for title, argv in COMMANDS:
            out += [f"## `{title}`", "", *_block(_printed(argv))]
        common = {g.title for g in _train_parser([])._action_groups}
        out += ["## Model options", "",
                "What `dgm train MODEL --help` adds to the options of `dgm train` above.", ""]
        for name in MODELS.names():
            out += [f"### `dgm train {name}`", "", MODELS.help(name), "", *_block(_own_groups(_train_parser([name]),
                                                                                              common))]
        shown = common | {g.title for g in _train_parser(["gan"])._action_groups}  # what `dgm train gan` shows
        for flag, names in (("--arch", GAN_ARCHS.names()), ("--objective", OBJECTIVES.names())):
            for name in names:  # only the groups this part adds
                text = _own_groups(_train_parser(["gan", flag, name]), shown)
                if text:
                    out += [f"### `dgm train gan {flag} {name}`", "", *_block(text)]
        out += ["## Registered names", ""]
        for what in LISTS:
            out += [f"### `dgm list {what}`", "", *_block(_printed(["list", what]))]
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
