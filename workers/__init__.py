"""dramatiq broker setup and actors: thin shells that claim a row, call core, record."""
