"""Exceptions raised by sologm managers."""


class SoloGMError(Exception):
    """Base class for all sologm errors."""


class GameError(SoloGMError):
    """Errors about games."""


class ActError(SoloGMError):
    """Errors about acts."""


class SceneError(SoloGMError):
    """Errors about scenes."""


class EventError(SoloGMError):
    """Errors about events."""


class DiceError(SoloGMError):
    """Errors about dice notation and rolls."""


class OracleError(SoloGMError):
    """Errors from the oracle or its interpretations."""


class APIError(SoloGMError):
    """Errors talking to an external API."""
