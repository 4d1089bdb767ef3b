"""Database plumbing for every test: one in-memory SQLite database per test."""

from datetime import date
from unittest.mock import MagicMock

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from libris.db.session import DatabaseManager, get_db_context
from libris.integrations.mailer import Mailer
from libris.models import Base


@pytest.fixture
def db_engine():
    engine = create_engine(
        "sqlite://",
        connect_args={"check_same_thread": False},
        poolclass=StaticPool,
    )
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def database_manager(db_engine):
    """Point the DatabaseManager singleton at this test's engine."""
    saved = DatabaseManager._instance
    DatabaseManager._instance = DatabaseManager(engine=db_engine)
    yield DatabaseManager._instance
    DatabaseManager._instance = saved


@pytest.fixture
def db_session(database_manager):
    session = database_manager.get_session()
    yield session
    session.close()
    database_manager.close_session()


@pytest.fixture
def session_context():
    return get_db_context()


@pytest.fixture
def fake_mailer():
    """A Mailer that records instead of sending."""
    mailer = MagicMock(spec=Mailer)
    mailer.sent = []
    mailer.send.side_effect = lambda to, subject, body: mailer.sent.append((to, subject, body))
    return mailer


@pytest.fixture
def today():
    return date(2024, 3, 11)
