#!/usr/bin/env python3
"""Thin wrapper: `python scripts/demo.py ARGS` is `voice-agent demo ARGS`."""

import sys

from voice_agent.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
