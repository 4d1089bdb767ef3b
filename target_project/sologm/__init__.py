"""sologm: a solo RPG game master helper."""

__version__ = "0.4.2"
