"""``python -m app.labeling [project.rtnproj]``: the label-transfer window on its own."""
import sys

from .window import main

sys.exit(main())
