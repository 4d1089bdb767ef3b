"""``sologm event ...`` commands."""

import argparse

from sologm.cli.console import console
from sologm.core.event import EventManager
from sologm.database.session import get_db_context


def register(groups) -> None:
    parser = groups.add_parser("event", help="Record and list events of the active scene")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")

    add = commands.add_parser("add", help="Add an event")
    add.add_argument("--description", required=True)
    add.add_argument("--source", default="manual")
    add.set_defaults(handler=add_event)

    listing = commands.add_parser("list", help="List recent events")
    listing.add_argument("--limit", type=int, default=10)
    listing.set_defaults(handler=list_events)

    sources = commands.add_parser("sources", help="List event sources")
    sources.set_defaults(handler=list_sources)


def add_event(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        event_manager = EventManager(session=session)
        event = event_manager.add_event(description=args.description, source=args.source)
        console.print(f"Added event: {event.description}")
    return 0


def list_events(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        event_manager = EventManager(session=session)
        events = event_manager.list_events(limit=args.limit)
        if not events:
            console.print("No events in this scene yet.")
            return 0
        for event in events:
            console.print(f"- [{event.source_name}] {event.description}")
    return 0


def list_sources(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        event_manager = EventManager(session=session)
        for source in event_manager.get_event_sources():
            console.print(source.name)
    return 0
