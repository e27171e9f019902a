"""``python -m cxrembed.demo``: the whole chain (see :mod:`cxrembed.demo`)."""

import sys

from cxrembed.demo import main

sys.exit(main())
