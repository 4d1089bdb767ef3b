"""Where libris keeps its files, read from the environment."""

import os
from pathlib import Path
from typing import Optional


def get_home() -> Path:
    """``$LIBRIS_HOME``, else ``~/.libris``."""
    home = os.environ.get("LIBRIS_HOME")
    return Path(home).expanduser() if home else Path.home() / ".libris"


def get_database_url() -> str:
    url = os.environ.get("LIBRIS_DATABASE_URL")
    if url:
        return url
    home = get_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'libris.db'}"


def get_smtp_url() -> Optional[str]:
    """The mail server for notices, e.g. ``smtp://desk:secret@mail.example.org:587``."""
    return os.environ.get("LIBRIS_SMTP_URL") or None


DEFAULT_LOAN_DAYS = 21
MAX_OPEN_LOANS = 5
