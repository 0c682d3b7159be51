"""Persistence: declarative models, the one engine/session factory, unit of work."""
