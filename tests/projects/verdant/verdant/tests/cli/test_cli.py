import pytest
from click.testing import CliRunner

from verdant.cli.main import cli
from verdant.models import Bed, Greenhouse, Plant


@pytest.fixture
def runner():
    return CliRunner()


def test_list_empty(runner):
    result = runner.invoke(cli, ["greenhouse", "list"])
    assert result.exit_code == 0
    assert "No greenhouses yet." in result.output


def test_add_and_list(runner):
    runner.invoke(cli, ["greenhouse", "add", "Fernery", "--location", "Bath", "--use"])
    result = runner.invoke(cli, ["greenhouse", "list"])
    assert "* Fernery (Bath)" in result.output


def test_list_shows_fixture(runner, test_greenhouse):
    result = runner.invoke(cli, ["greenhouse", "list"])
    assert "Main House" in result.output


def test_add_greenhouse_persists(runner, db_session):
    runner.invoke(cli, ["greenhouse", "add", "Orangery"])
    assert db_session.query(Greenhouse).filter_by(name="Orangery").count() == 1


def test_bed_add_needs_greenhouse(runner):
    result = runner.invoke(cli, ["bed", "add", "A"])
    assert result.exit_code != 0
    assert "no active greenhouse" in result.output


def test_bed_add(runner, test_greenhouse, db_session):
    result = runner.invoke(cli, ["bed", "add", "Herbs", "--capacity", "3"])
    assert result.exit_code == 0, result.output
    assert db_session.query(Bed).filter_by(name="Herbs").one().capacity == 3


def test_plant_add(runner, test_bed, db_session):
    result = runner.invoke(cli, ["plant", "add", "Rosemary"])
    assert result.exit_code == 0, result.output
    assert db_session.query(Plant).filter_by(species="Rosemary").count() == 1


def test_plant_water(runner, test_plant):
    result = runner.invoke(cli, ["plant", "water", "--ml", "50"])
    assert "Watered 1 plant(s)" in result.output
