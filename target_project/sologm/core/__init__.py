"""Business logic: one manager per model."""
