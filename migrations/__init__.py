"""Alembic environment and versions of the newsmon schema."""
