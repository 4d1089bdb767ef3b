"""Command-line interface for sologm."""
