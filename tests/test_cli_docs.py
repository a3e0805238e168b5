"""docs/cli.md is generated from the parsers (`python -m dgm._clidoc > docs/cli.md`) and must be current."""
from pathlib import Path

from dgm._clidoc import reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_docs_cli_md_equals_the_text_generated_from_the_parsers():
    want = reference()
    assert DOC.read_text() == want, "docs/cli.md is out of date: run `python -m dgm._clidoc > docs/cli.md`"
    for flag in ("--figure", "--interpolate", "--per-class", "-k K", "--orders-used", "--order-sampling"):
        assert flag in want
