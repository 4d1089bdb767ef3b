"""Fixtures for the core manager tests."""

import random

import pytest

from sologm.core.event import EventManager
from sologm.tests.conftest import *  # noqa: F401,F403


@pytest.fixture
def standalone_event_manager():
    """An EventManager built the way the CLI used to build it: no session (it used the
    thread's scoped session) and no SceneManager (it creates one when first asked)."""
    return EventManager()


@pytest.fixture
def fixed_dice(monkeypatch):
    """Make every die show the values in ``fixed_dice.values``, cycling."""

    class _Fixed:
        values = [4]
        calls = 0

    def _randint(low, high):
        value = _Fixed.values[_Fixed.calls % len(_Fixed.values)]
        _Fixed.calls += 1
        return value

    monkeypatch.setattr(random, "randint", _randint)
    return _Fixed
