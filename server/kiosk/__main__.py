"""``python -m server.kiosk check WORLD_DIR``: see :mod:`server.kiosk.check`."""

from __future__ import annotations

import sys

from .check import main

sys.exit(main())
