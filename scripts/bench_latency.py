#!/usr/bin/env python3
"""Thin wrapper: `python scripts/bench_latency.py ARGS` is `voice-agent bench ARGS`."""

import sys

from voice_agent.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
