"""`python -m bot.cli`: the `txaudit` command."""

import sys

from bot.cli import main

sys.exit(main())
