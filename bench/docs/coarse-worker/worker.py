#!/usr/bin/env python3
"""The docs' worker.py for amqp-consume: print the message (they then sleep 10 s for the demo)."""

import sys

print("Processing " + sys.stdin.read())
