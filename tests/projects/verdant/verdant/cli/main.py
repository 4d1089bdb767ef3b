"""``verdant`` command line."""

import click

from verdant.core.bed import BedManager
from verdant.core.care import CareManager
from verdant.core.greenhouse import GreenhouseManager
from verdant.core.plant import PlantManager
from verdant.database.session import db_context, init_db
from verdant.errors import VerdantError


@click.group()
@click.option("--db-url", envvar="VERDANT_DATABASE_URL", default=None)
def cli(db_url):
    """Greenhouse plant-care tracker."""
    init_db(db_url)


@cli.group()
def greenhouse():
    """Manage greenhouses."""


@greenhouse.command("list")
def greenhouse_list():
    with db_context() as session:
        items = GreenhouseManager(session=session).list_greenhouses()
        if not items:
            click.echo("No greenhouses yet.")
            return
        for gh in items:
            marker = "*" if gh.is_active else " "
            click.echo(f"{marker} {gh.name} ({gh.location or 'no location'})")


@greenhouse.command("add")
@click.argument("name")
@click.option("--location")
@click.option("--use", "activate", is_flag=True)
def greenhouse_add(name, location, activate):
    with db_context() as session:
        gh = GreenhouseManager(session=session).create_greenhouse(
            name, location=location, activate=activate
        )
        click.echo(f"Added greenhouse {gh.name} [{gh.id}]")


@cli.group()
def bed():
    """Manage beds in the active greenhouse."""


@bed.command("add")
@click.argument("name")
@click.option("--capacity", type=int, default=10)
@click.option("--use", "activate", is_flag=True)
def bed_add(name, capacity, activate):
    try:
        with db_context() as session:
            greenhouses = GreenhouseManager(session=session)
            gh = greenhouses.require_active_greenhouse()
            b = BedManager(greenhouses, session=session).create_bed(
                gh.id, name, capacity=capacity, activate=activate
            )
            click.echo(f"Added bed {b.name} to {gh.name}")
    except VerdantError as exc:
        raise click.ClickException(str(exc))


@cli.group()
def plant():
    """Manage plants in the active bed."""


@plant.command("add")
@click.argument("species")
@click.option("--nickname")
def plant_add(species, nickname):
    try:
        with db_context() as session:
            p = PlantManager(session=session).add_plant(species, nickname=nickname)
            click.echo(f"Planted {p.species} [{p.id}]")
    except VerdantError as exc:
        raise click.ClickException(str(exc))


@plant.command("water")
@click.option("--ml", "amount", type=int, default=250)
def plant_water(amount):
    try:
        with db_context() as session:
            logs = CareManager(session=session).water_active_bed(amount)
            click.echo(f"Watered {len(logs)} plant(s)")
    except VerdantError as exc:
        raise click.ClickException(str(exc))
