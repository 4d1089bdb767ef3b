"""libris: the circulation desk of a small lending library."""

__version__ = "1.3.0"
