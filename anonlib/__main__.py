"""``python -m anonlib``: see :mod:`anonlib.cli`."""

import sys

from .cli import main

sys.exit(main())
