"""``python -m loadgen --help``."""

import sys

from loadgen.simulator import main

sys.exit(main())
