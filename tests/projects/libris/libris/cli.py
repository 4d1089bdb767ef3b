"""The desk's command line: ``libris <group> <command>``."""

import logging
from datetime import date

import click

from libris import __version__
from libris.config import get_home
from libris.db import close_session, get_db_context, get_session, init_db
from libris.errors import LibrisError
from libris.services.branches import BranchManager
from libris.services.catalog import CatalogManager
from libris.services.holds import HoldManager
from libris.services.loans import LoanManager
from libris.services.members import MemberManager
from libris.services.notices import NoticeManager

log = logging.getLogger("libris")


class DeskGroup(click.Group):
    """Prints LibrisError as a one-line message instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LibrisError as e:
            raise click.ClickException(str(e)) from e


@click.group(cls=DeskGroup)
@click.version_option(__version__, prog_name="libris")
def cli() -> None:
    """Circulation desk of the library."""
    init_db()


# ----------------------------------------------------------------------------- branches


@cli.group()
def branch() -> None:
    """Library branches."""


@branch.command("open")
@click.argument("code")
@click.argument("name")
@click.option("--use", "make_current", is_flag=True, help="Work at this branch from now on")
def open_branch(code: str, name: str, make_current: bool) -> None:
    with get_db_context() as session:
        new = BranchManager(session=session).open_branch(code, name, make_current=make_current)
        click.echo(f"Opened {new.code}: {new.name}")


@branch.command("list")
def list_branches() -> None:
    with get_db_context() as session:
        for b in BranchManager(session=session).list_branches():
            click.echo(f"{'*' if b.is_current else ' '} {b.code}  {b.name}")


@branch.command("use")
@click.argument("code")
def use_branch(code: str) -> None:
    with get_db_context() as session:
        b = BranchManager(session=session).use_branch(code)
        click.echo(f"Now working at {b.code}")


# ----------------------------------------------------------------------------- books


@cli.group()
def books() -> None:
    """The catalogue."""


@books.command("list")
def list_books() -> None:
    with get_db_context() as session:
        found = CatalogManager(session=session).search("")
        if not found:
            click.echo("No books catalogued yet.")
            return
        for book in found:
            click.echo(f"{book.barcode}  {book.title}  ({book.author or 'unknown'})")


@books.command("add")
@click.argument("barcode")
@click.argument("isbn")
@click.argument("title")
@click.option("--author")
def add_book(barcode: str, isbn: str, title: str, author: str) -> None:
    with get_db_context() as session:
        book = CatalogManager(session=session).add_book(barcode, isbn, title, author=author)
        click.echo(f"Catalogued {book.barcode}: {book.title}")


@books.command("search")
@click.argument("text")
def search_books(text: str) -> None:
    with get_db_context() as session:
        for book in CatalogManager(session=session).search(text):
            click.echo(f"{book.barcode}  {book.title}  [{book.branch.code}]")


# ----------------------------------------------------------------------------- members and loans


@cli.group()
def members() -> None:
    """Members."""


@members.command("add")
@click.argument("card_number")
@click.argument("name")
@click.option("--email")
def add_member(card_number: str, name: str, email: str) -> None:
    with get_db_context() as session:
        member = MemberManager(session=session).register(card_number, name, email=email)
        click.echo(f"Registered {member.name} ({member.card_number})")


@cli.group()
def loans() -> None:
    """Lending and returns."""


@loans.command("out")
@click.argument("barcode")
@click.argument("card_number")
def lend(barcode: str, card_number: str) -> None:
    with get_db_context() as session:
        loan_manager = LoanManager(session=session)
        member = loan_manager.member_manager.find_by_card(card_number)
        book = next((b for b in loan_manager.catalog_manager.search("") if b.barcode == barcode), None)
        if book is None:
            raise click.ClickException(f"No book with barcode {barcode}")
        loan = loan_manager.checkout(book.id, member.id)
        click.echo(f"{book.title} lent to {member.name}, due {loan.due_on:%Y-%m-%d}")


@loans.command("in")
@click.argument("barcode")
def take_back(barcode: str) -> None:
    with get_db_context() as session:
        hold_manager = HoldManager(session=session)
        book = next((b for b in hold_manager.loan_manager.catalog_manager.search("") if b.barcode == barcode), None)
        if book is None:
            raise click.ClickException(f"No book with barcode {barcode}")
        hold = hold_manager.check_in(book.id)
        click.echo(f"{book.title} is back")
        if hold is not None:
            click.echo(f"Keep it at the desk for {hold.member.name}")


@loans.command("overdue")
def overdue() -> None:
    with get_db_context() as session:
        late = LoanManager(session=session).overdue(today=date.today())
        if not late:
            click.echo("Nothing overdue.")
        for loan in late:
            click.echo(f"{loan.due_on:%Y-%m-%d}  {loan.book.title}  {loan.member.name}")


# ----------------------------------------------------------------------------- notices


@cli.group()
def notices() -> None:
    """Reminders to members."""


@notices.command("send")
@click.option("--within", default=2, show_default=True, help="Remind about loans due within N days")
def send_notices(within: int) -> None:
    # Runs from cron every morning, long before the desk opens.
    session = get_session()
    try:
        notice_manager = NoticeManager(session=session)
        created = notice_manager.due_reminders(within_days=within)
        sent = notice_manager.send_pending()
        click.echo(f"{len(created)} reminders, {sent} e-mails sent")
    finally:
        close_session()


def _log_to_file() -> None:
    # ~/.libris/logs is created by the installer; every desk session is logged there.
    handler = logging.FileHandler(get_home() / "logs" / "libris.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def main() -> None:
    """Entry point of the ``libris`` command."""
    _log_to_file()
    cli(prog_name="libris")
