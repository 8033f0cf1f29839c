"""piami.processes."""
