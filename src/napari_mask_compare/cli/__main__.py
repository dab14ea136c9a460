"""``python -m napari_mask_compare.cli``."""

import sys

from . import main

sys.exit(main())
