"""The FastAPI application factory: one router per resource."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from api.routes import health
from core.config import Settings


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    """Build the web application for ``settings`` against ``engine``."""
    app = FastAPI(
        title="newsmon",
        version="0.1.0",
        description="Admin and tenant API of newsmon, the news-monitoring worker system.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.include_router(health.router)
    return app
