"""Squall core library: job specs, the store, the lifecycle runner and sites.

The core never imports click or prints; the CLI (``squall.cli``) renders what
the core reports through event callbacks and typed results.
"""

__version__ = "0.1.0"
