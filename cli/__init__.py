"""The ``newsmon`` command line (typer)."""
