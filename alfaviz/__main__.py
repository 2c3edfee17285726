"""``python -m alfaviz``: the same as the ``alfaviz`` command."""

import sys

from alfaviz.cli import main

sys.exit(main())
