"""``python -m fastnmf``: the same program as the ``fastnmf`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
