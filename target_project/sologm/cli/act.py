"""``sologm act ...`` commands."""

import argparse

from sologm.cli.console import console
from sologm.core.act import ActManager
from sologm.core.game import GameManager
from sologm.database.session import get_db_context


def register(groups) -> None:
    parser = groups.add_parser("act", help="Manage acts of the active game")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")

    create = commands.add_parser("create", help="Start a new act")
    create.add_argument("--title", default=None)
    create.add_argument("--summary", default=None)
    create.set_defaults(handler=create_act)

    listing = commands.add_parser("list", help="List acts")
    listing.set_defaults(handler=list_acts)

    complete = commands.add_parser("complete", help="Complete the active act")
    complete.add_argument("--summary", default=None)
    complete.set_defaults(handler=complete_act)


def create_act(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        game_manager = GameManager(session=session)
        act_manager = ActManager(game_manager=game_manager, session=session)
        act = act_manager.create_act(title=args.title, summary=args.summary)
        console.print(f"Created act {act.sequence}: {act.title or 'Untitled'}")
    return 0


def list_acts(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        act_manager = ActManager(session=session)
        acts = act_manager.list_acts()
        if not acts:
            console.print("No acts in this game yet.")
            return 0
        for act in acts:
            marker = "*" if act.is_active else " "
            console.print(f"{marker} {act.sequence}. {act.title or 'Untitled'}")
    return 0


def complete_act(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        act_manager = ActManager(session=session)
        act = act_manager.get_active_act()
        if act is None:
            console.error("No active act")
            return 1
        act_manager.complete_act(act.id, summary=args.summary)
        console.print(f"Completed act {act.sequence}")
    return 0
