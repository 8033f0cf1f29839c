"""piami.theory."""
