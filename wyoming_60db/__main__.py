"""``wyoming-60db``: a Wyoming server for 60db's streaming speech-to-text and text-to-speech.

The options are in ``cli.py``; this only runs the server they describe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

from .cli import parse_command_line
from .logs import start_logging
from .server import serve


def run() -> None:
    """Console entry point (``wyoming-60db``)."""
    command = parse_command_line(sys.argv[1:], os.environ)
    start_logging(command)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(command.settings))


if __name__ == "__main__":
    run()
