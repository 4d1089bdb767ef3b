"""``sologm game ...`` commands."""

import argparse

from sologm.cli.console import console
from sologm.core.game import GameManager
from sologm.database.session import get_db_context


def register(groups) -> None:
    parser = groups.add_parser("game", help="Manage games")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")

    create = commands.add_parser("create", help="Create a game and make it active")
    create.add_argument("--name", required=True)
    create.add_argument("--description", default=None)
    create.set_defaults(handler=create_game)

    listing = commands.add_parser("list", help="List games")
    listing.set_defaults(handler=list_games)

    activate = commands.add_parser("activate", help="Make a game active")
    activate.add_argument("game", help="Game id or slug")
    activate.set_defaults(handler=activate_game)

    info = commands.add_parser("info", help="Show the active game")
    info.set_defaults(handler=game_info)

    delete = commands.add_parser("delete", help="Delete a game")
    delete.add_argument("game", help="Game id or slug")
    delete.set_defaults(handler=delete_game)


def create_game(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        game_manager = GameManager(session=session)
        game = game_manager.create_game(name=args.name, description=args.description)
        console.print(f"Created game: {game.name} ({game.slug})")
    return 0


def list_games(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        game_manager = GameManager(session=session)
        games = game_manager.list_games()
        if not games:
            console.print("No games found. Create one with: sologm game create --name NAME")
            return 0
        for game in games:
            marker = "*" if game.is_active else " "
            console.print(f"{marker} {game.slug}  {game.name}  [{game.id}]")
    return 0


def activate_game(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        game_manager = GameManager(session=session)
        game = game_manager.get_game(args.game) or game_manager.get_game_by_slug(args.game)
        if game is None:
            console.error(f"Game '{args.game}' not found")
            return 1
        game_manager.activate_game(game.id)
        console.print(f"Active game: {game.name}")
    return 0


def game_info(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        game_manager = GameManager(session=session)
        game = game_manager.get_active_game()
        if game is None:
            console.print("No active game.")
            return 1
        console.print(f"{game.name} ({game.slug})")
        if game.description:
            console.print(game.description)
        console.print(f"Acts: {len(game.acts)}")
    return 0


def delete_game(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        game_manager = GameManager(session=session)
        game = game_manager.get_game(args.game) or game_manager.get_game_by_slug(args.game)
        if game is None:
            console.error(f"Game '{args.game}' not found")
            return 1
        game_manager.delete_game(game.id)
        console.print(f"Deleted game: {game.name}")
    return 0
