"""Tests for ``sologm game`` commands."""

import argparse

import pytest

from sologm.cli import game as game_cli
from sologm.cli.main import build_parser
from sologm.core.game import GameManager
from sologm.models.game import Game


def test_game_list_empty(run_cli):
    code, out, err = run_cli("game", "list")
    assert code == 0
    assert "No games found" in out


def test_game_list_shows_games(run_cli, test_game):
    code, out, _ = run_cli("game", "list")
    assert code == 0
    assert "* test-game  Test Game" in out


def test_game_create(run_cli, db_session):
    code, out, _ = run_cli("game", "create", "--name", "CLI Game", "--description", "From the CLI")

    assert code == 0
    assert "Created game: CLI Game (cli-game)" in out
    assert db_session.query(Game).filter(Game.slug == "cli-game").one().description == "From the CLI"


def test_game_create_duplicate(run_cli, test_game):
    code, _, err = run_cli("game", "create", "--name", test_game.name)
    assert code == 1
    assert "already exists" in err


def test_game_activate_by_slug(run_cli, create_test_game, db_session):
    create_test_game(name="Alpha")
    beta = create_test_game(name="Beta", is_active=False)

    code, out, _ = run_cli("game", "activate", "beta")

    assert code == 0
    assert "Active game: Beta" in out
    assert db_session.get(Game, beta.id).is_active is True


def test_game_activate_unknown(run_cli):
    code, _, err = run_cli("game", "activate", "nothing")
    assert code == 1
    assert "not found" in err


def test_game_info(run_cli, test_act):
    code, out, _ = run_cli("game", "info")
    assert code == 0
    assert "Test Game (test-game)" in out
    assert "Acts: 1" in out


def test_game_delete(run_cli, test_game, session_context):
    code, _, _ = run_cli("game", "delete", test_game.slug)
    assert code == 0
    with session_context as session:
        assert session.query(Game).count() == 0


def test_game_list_with_mock_console(mock_console, game_manager):
    game_manager.create_game("Mocked Game")

    code = game_cli.list_games(argparse.Namespace())

    assert code == 0
    printed = " ".join(call.args[0] for call in mock_console.print.call_args_list)
    assert "Mocked Game" in printed


def test_game_create_new_style(run_cli, session_context):
    run_cli("game", "create", "--name", "Fresh CLI Game")
    with session_context as session:
        game_manager = GameManager(session=session)
        assert game_manager.get_active_game().name == "Fresh CLI Game"


@pytest.mark.parametrize(
    "argv,handler",
    [
        (["game", "list"], game_cli.list_games),
        (["game", "create", "--name", "X"], game_cli.create_game),
        (["game", "activate", "x"], game_cli.activate_game),
        (["game", "info"], game_cli.game_info),
    ],
)
def test_parser_routes_commands(argv, handler):
    args = build_parser().parse_args(argv)
    assert args.handler is handler
