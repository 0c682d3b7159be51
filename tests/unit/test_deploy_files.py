"""docker-compose.yml and Procfile stay in step with the CLI and the settings.

Docker cannot run here, so the compose file's structure is checked instead.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer.main
import yaml

from cli.main import app
from core.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def _is_cli_command(argv: list[str]) -> bool:
    assert argv[0] == "newsmon"
    # typer vendors its own click: walk the command tree by duck typing.
    command: Any = typer.main.get_command(app)
    for word in argv[1:]:
        if word.startswith("-") or not hasattr(command, "commands"):
            break
        if word not in command.commands:
            return False
        command = command.commands[word]
    return not hasattr(command, "commands")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_has_every_process_with_healthchecks():
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "scheduler", "worker"} <= set(services)
    for name in ("postgres", "redis", "web", "scheduler", "worker"):
        assert "healthcheck" in services[name], name
    assert services["redis"]["command"][-4:] == ["--save", "", "--appendonly", "no"]


def test_scheduler_and_worker_healthchecks_read_their_own_heartbeat():
    services = _compose()["services"]
    for name in ("scheduler", "worker"):
        test = services[name]["healthcheck"]["test"]
        assert test == ["CMD", "newsmon", "health", name], test
        assert _is_cli_command(test[1:])


def test_compose_commands_are_cli_commands_and_env_are_settings():
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    services = _compose()["services"]
    for name in ("migrate", "web", "scheduler", "worker"):
        service = services[name]
        assert _is_cli_command(service["command"]), service["command"]
        env = service["environment"]
        assert set(env) <= known, set(env) - known
        assert env["NEWSMON_DATABASE_URL"].startswith("postgresql://")
        assert env["NEWSMON_BROKER_URL"].startswith("redis://")
        assert service.get("build") == "."
    for name in ("web", "scheduler", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_dockerfile_copies_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("core", "workers", "scheduler", "api", "cli", "migrations"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_procfile_lines_are_cli_commands():
    roles = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        role, _, command = line.partition(":")
        roles[role] = command.split()
        assert _is_cli_command(roles[role]), line
    assert set(roles) == {"release", "web", "scheduler", "worker"}
    assert roles["release"] == ["newsmon", "db", "upgrade"]


def test_env_example_names_every_setting():
    text = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        assert ENV_PREFIX + name.upper() in text, name


def test_readme_configuration_table_names_every_setting():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Architecture")]
    for name in Settings.model_fields:
        assert f"`{ENV_PREFIX}{name.upper()}`" in table, name


def test_procfile_web_listens_where_the_platform_says():
    # Heroku-style platforms route to $PORT on every interface, never to 127.0.0.1:8000.
    web = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    words = web.split()
    assert words[words.index("--port") + 1] == "$PORT"
    assert words[words.index("--host") + 1] == "0.0.0.0"


def test_docker_image_listens_on_every_interface():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "NEWSMON_WEB_HOST=0.0.0.0" in dockerfile


def test_license_is_an_spdx_string():
    # The table form ({ text = ... }) makes every setuptools >= 77 install print a warning.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
