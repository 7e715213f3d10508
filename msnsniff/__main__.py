"""`python -m msnsniff`."""

import sys

from msnsniff.cli import main

sys.exit(main())
