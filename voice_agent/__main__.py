"""`python -m voice_agent` is the `voice-agent` command."""

import sys

from .app.cli import main

sys.exit(main())
