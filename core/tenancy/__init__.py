"""Organizations, their members and keys."""
