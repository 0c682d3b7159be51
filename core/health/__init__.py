"""Health of what organizations depend on: checks, alerts, the report of GET /health."""
