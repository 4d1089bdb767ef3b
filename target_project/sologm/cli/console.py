"""Tiny output helper so commands can be tested with a mock console."""

import sys
from typing import Any, Optional, TextIO


class Console:
    """Prints to stdout (or ``file``); errors go to stderr."""

    def __init__(self, file: Optional[TextIO] = None) -> None:
        self.file = file

    def print(self, *args: Any) -> None:
        print(*args, file=self.file or sys.stdout)

    def error(self, message: str) -> None:
        print(f"Error: {message}", file=sys.stderr)


console = Console()
