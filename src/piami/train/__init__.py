"""piami.train."""
