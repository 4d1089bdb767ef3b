"""Configuration: where sologm keeps its data and which settings apply.

Settings come from environment variables (``SOLOGM_<NAME>``) first, then
from ``config.json`` in the data directory, then from the defaults below.
"""

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional

logger = logging.getLogger(__name__)

DEFAULTS: Dict[str, Any] = {
    "anthropic_api_key": None,
    "oracle_model": "claude-3-5-sonnet-latest",
    "oracle_interpretations": 3,
    "oracle_retries": 2,
    "debug": False,
}


def get_data_dir() -> Path:
    """Return the user's sologm directory (``$SOLOGM_HOME`` or ``~/.sologm``)."""
    home = os.environ.get("SOLOGM_HOME")
    return Path(home).expanduser() if home else Path.home() / ".sologm"


def get_database_url() -> str:
    """Return the database URL: ``$SOLOGM_DATABASE_URL`` or a sqlite file in the data dir."""
    url = os.environ.get("SOLOGM_DATABASE_URL")
    if url:
        return url
    data_dir = get_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'sologm.db'}"


class Config:
    """Read-only view over settings."""

    _instance: Optional["Config"] = None

    def __init__(self, config_path: Optional[Path] = None) -> None:
        self.config_path = config_path or (get_data_dir() / "config.json")
        self._data: Dict[str, Any] = dict(DEFAULTS)
        if self.config_path.exists():
            try:
                self._data.update(json.loads(self.config_path.read_text()))
            except (OSError, ValueError) as e:
                logger.warning("Could not read %s: %s", self.config_path, e)

    @classmethod
    def get_instance(cls) -> "Config":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def get(self, key: str, default: Any = None) -> Any:
        env_value = os.environ.get(f"SOLOGM_{key.upper()}")
        if env_value is not None:
            return env_value
        value = self._data.get(key)
        return default if value is None else value


def get_config() -> Config:
    return Config.get_instance()
