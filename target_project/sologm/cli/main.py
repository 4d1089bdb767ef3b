"""Entry point: ``sologm <group> <command> [options]``."""

import argparse
import logging
import sys
from typing import List, Optional

from sologm import __version__
from sologm.cli import act, dice, event, game, scene
from sologm.cli.console import console
from sologm.database.session import initialize_database
from sologm.utils.errors import SoloGMError

logger = logging.getLogger(__name__)

COMMAND_GROUPS = (game, act, scene, event, dice)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sologm", description="Solo RPG game master helper")
    parser.add_argument("--version", action="version", version=f"sologm {__version__}")
    parser.add_argument("--debug", action="store_true", help="Log debug output")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    for module in COMMAND_GROUPS:
        module.register(groups)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)

    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2 if args.group is None else 1

    try:
        initialize_database()
    except Exception as e:  # pragma: no cover - depends on the user's disk
        console.error(f"Could not open the database: {e}")
        return 1

    try:
        return handler(args) or 0
    except SoloGMError as e:
        console.error(str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
