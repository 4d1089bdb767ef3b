"""``sologm scene ...`` commands."""

import argparse

from sologm.cli.console import console
from sologm.core.scene import SceneManager
from sologm.database.session import get_db_context


def register(groups) -> None:
    parser = groups.add_parser("scene", help="Manage scenes of the active act")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")

    add = commands.add_parser("add", help="Add a scene and make it active")
    add.add_argument("--title", required=True)
    add.add_argument("--description", default=None)
    add.set_defaults(handler=add_scene)

    listing = commands.add_parser("list", help="List scenes")
    listing.set_defaults(handler=list_scenes)

    info = commands.add_parser("info", help="Show the active scene")
    info.set_defaults(handler=scene_info)

    complete = commands.add_parser("complete", help="Complete the active scene")
    complete.set_defaults(handler=complete_scene)


def add_scene(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        scene_manager = SceneManager(session=session)
        scene = scene_manager.create_scene(title=args.title, description=args.description)
        console.print(f"Added scene {scene.sequence}: {scene.title}")
    return 0


def list_scenes(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        scene_manager = SceneManager(session=session)
        scenes = scene_manager.list_scenes()
        if not scenes:
            console.print("No scenes in this act yet.")
            return 0
        for scene in scenes:
            marker = "*" if scene.is_active else " "
            console.print(f"{marker} {scene.sequence}. {scene.title} ({scene.status.value})")
    return 0


def scene_info(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        scene_manager = SceneManager(session=session)
        context = scene_manager.get_active_context()
        console.print(f"Game:  {context['game'].name}")
        console.print(f"Act:   {context['act'].title or 'Untitled'}")
        console.print(f"Scene: {context['scene'].title}")
    return 0


def complete_scene(args: argparse.Namespace) -> int:
    with get_db_context() as session:
        scene_manager = SceneManager(session=session)
        scene = scene_manager.get_active_context()["scene"]
        scene_manager.complete_scene(scene.id)
        console.print(f"Completed scene: {scene.title}")
    return 0
