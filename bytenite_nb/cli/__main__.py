"""``python -m bytenite_nb.cli``: the ``bytenite-nb`` command."""

import os
import sys

from bytenite_nb.cli import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
sys.exit(main())
