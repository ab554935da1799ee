"""``python -m ipis_server``: the same as the ``ipis`` command."""

import sys

from .cli import main

sys.exit(main())
