"""The web process: admin and tenant API (FastAPI), health, metrics, operator page."""
