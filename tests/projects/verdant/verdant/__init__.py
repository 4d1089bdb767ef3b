"""Verdant: a plant-care tracker for small greenhouses."""

__version__ = "0.4.0"
