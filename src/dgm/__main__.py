"""``python -m dgm`` is the ``dgm`` command."""
import sys

from .cli import main

sys.exit(main())
