"""piami.models."""
