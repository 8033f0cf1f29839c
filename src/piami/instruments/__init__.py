"""piami.instruments."""
