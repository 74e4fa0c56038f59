"""``python -m diffprog.gallery``: run every gallery example (see :mod:`diffprog.gallery`)."""

import sys

from diffprog.gallery import main

if __name__ == "__main__":
    sys.exit(main())
