"""Errors raised by verdant's managers."""


class VerdantError(Exception):
    """Base class for domain errors."""


class NotFoundError(VerdantError):
    """An entity that was asked for does not exist."""


class NoActiveBedError(VerdantError):
    """No bed is marked active in the active greenhouse."""


class NoActiveGreenhouseError(VerdantError):
    """No greenhouse is marked active."""


class ForecastError(VerdantError):
    """The weather service could not be reached or configured."""
