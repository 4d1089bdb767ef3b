"""``sologm dice ...`` commands."""

import argparse

from sologm.cli.console import console
from sologm.core.dice import DiceManager
from sologm.database.session import get_db_context
from sologm.utils.errors import ActError, SceneError


def register(groups) -> None:
    parser = groups.add_parser("dice", help="Roll dice")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")

    roll = commands.add_parser("roll", help="Roll dice, e.g. 2d6+1")
    roll.add_argument("notation")
    roll.add_argument("--reason", default=None)
    roll.set_defaults(handler=roll_dice)

    history = commands.add_parser("history", help="Show recent rolls")
    history.add_argument("--limit", type=int, default=5)
    history.set_defaults(handler=roll_history)


def roll_dice(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        dice_manager = DiceManager(session=session)
        try:
            scene = dice_manager.scene_manager.get_active_scene()
        except (ActError, SceneError):
            scene = None
        result = dice_manager.roll(
            args.notation, reason=args.reason, scene_id=scene.id if scene else None
        )
        rolls = ", ".join(str(r) for r in result.individual_results)
        console.print(f"{result.notation}: [{rolls}] {result.modifier:+d} = {result.total}")
    return 0


def roll_history(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        dice_manager = DiceManager(session=session)
        rolls = dice_manager.get_recent_rolls(limit=args.limit)
        if not rolls:
            console.print("No dice rolls yet.")
            return 0
        for roll in rolls:
            console.print(f"{roll.notation} = {roll.total}  {roll.reason or ''}".rstrip())
    return 0
