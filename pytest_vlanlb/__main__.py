"""`python -m pytest_vlanlb`: the `vlanlb` command."""

import sys

from .cli import main

sys.exit(main())
