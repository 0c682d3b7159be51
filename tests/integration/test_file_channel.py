"""The ``file`` channel writes only below ``<root>/<organizationId>/`` (RELIABILITY row 64):
names that escape are refused at create, links that escape are never followed, rows
stored with an absolute directory fail for good, and production mode without a root has
no file channel. Every test asserts on the filesystem that nothing landed elsewhere."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from core.delivery import channels as ch
from core.delivery.deliveries import SendContext
from core.delivery.model import sample_digest
from core.delivery.presenting import present
from core.delivery.send_file import FILE_CHANNEL_OFF, send_file
from core.errors import ValidationError
from tests.support.delivery import (  # noqa: F401  (world_fixture provides `world`)
    START,
    World,
    world_fixture,
)


@pytest.fixture
def root(world: World) -> Path:
    assert world.ctx.file_root is not None
    return world.ctx.file_root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder a tenant must never reach (a stand-in for /etc/cron.d or api/static)."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def files_under(path: Path) -> list[Path]:
    """Files and links below ``path`` (a test's SQLite database aside)."""
    found = (p for p in path.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(p for p in found if ".db" not in p.name)


def deliver_file(world: World, config: dict[str, Any] | ch.FileConfig) -> Any:
    if isinstance(config, dict):
        world.channel("file", config)
    else:
        world.stored_channel("file", config)
    world.stories(1)
    [delivery_id] = world.plan()
    outcome = world.deliver(delivery_id).outcome
    assert outcome is not None
    return outcome, world.row(delivery_id)


def test_digests_land_in_the_organizations_own_folder_only(
    world: World, root: Path, tmp_path: Path
) -> None:
    outcome, row = deliver_file(world, {"directory": "team/daily"})
    assert outcome.kind == "sent" and row.state == "sent"
    folder = root / world.org_id / "team" / "daily"
    written = files_under(tmp_path)
    assert [p.suffix for p in written] == [".html", ".md"]
    assert all(p.parent == folder for p in written)
    assert row.response == ", ".join(
        str(p) for p in sorted(written, key=lambda p: p.suffix != ".md")
    )


@pytest.mark.parametrize(
    "directory",
    [
        "..",
        "../other-org",
        "a/../../x",
        "/etc/cron.d",
        "./x",
        ".hidden",
        "a//b",
        "x/",
        "a\\b",
        "a/b/c/d/e",
        "naïve",
        "nul\x00byte",
    ],
)
def test_a_directory_that_could_escape_is_refused_naming_the_field(directory: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ch.validate_config("file", {"directory": directory})
    assert refused.value.field == "config.directory"


@pytest.mark.parametrize("directory", ["evil", "ok/deeper", "evil/sub"])
def test_a_symlink_out_of_the_organization_folder_is_never_followed(
    world: World, root: Path, outside: Path, directory: str
) -> None:
    (root / world.org_id / "ok").mkdir(parents=True)
    (root / world.org_id / "evil").symlink_to(outside)
    (root / world.org_id / "ok" / "deeper").symlink_to(outside)
    outcome, row = deliver_file(world, {"directory": directory})
    assert (outcome.kind, outcome.permanent, row.state) == ("failed", True, "failed")
    assert "symlink" in (row.lastError or "")
    assert files_under(outside) == []


def test_a_symlinked_organization_folder_is_never_followed(
    world: World, root: Path, outside: Path
) -> None:
    root.mkdir(parents=True)
    (root / world.org_id).symlink_to(outside)
    outcome, _ = deliver_file(world, {"directory": "digests"})
    assert outcome.permanent and files_under(outside) == []


def test_a_link_planted_at_a_digest_file_name_is_replaced_not_written_through(
    root: Path, outside: Path
) -> None:
    """Digest file names are predictable; a link put there is swapped for the file."""
    config = ch.FileConfig(directory="d", formats=["markdown"])
    digest = sample_digest(START, "org_a")
    show = partial(present, digest, now=START)
    assert send_file(config, digest, show, root=root, organization_id="org_a").kind == "sent"
    [written] = files_under(root)
    target = outside / "crontab"
    target.write_text("untouched")
    written.unlink()
    written.symlink_to(target)
    assert send_file(config, digest, show, root=root, organization_id="org_a").kind == "sent"
    assert target.read_text() == "untouched"
    assert not written.is_symlink() and written.read_text().startswith("# ")
    assert files_under(root) == [written]  # no temporary file left behind


def test_another_organizations_folder_is_out_of_reach(world: World, root: Path) -> None:
    other = root / "org_other"
    other.mkdir(parents=True)
    (other / "theirs.md").write_text("theirs")
    outcome, _ = deliver_file(world, {"directory": "org_other"})  # a name, below our own
    assert outcome.kind == "sent"
    assert files_under(other) == [other / "theirs.md"]
    assert all(world.org_id in p.parts for p in files_under(root) if p.parent != other)


def test_a_stored_absolute_directory_fails_for_good_and_writes_nothing(
    world: World, root: Path, outside: Path
) -> None:
    outcome, row = deliver_file(world, ch.FileConfig.model_construct(directory=str(outside)))
    assert (outcome.kind, outcome.permanent, row.state) == ("failed", True, "failed")
    assert "config.directory: must be a relative folder name" in (row.lastError or "")
    assert files_under(outside) == [] and not root.exists()


def test_production_mode_without_a_root_has_no_file_channel(world: World, tmp_path: Path) -> None:
    off = SendContext(keyring=world.keyring, client=world.ctx.client, policy=world.ctx.policy)
    world.channel("file", {"directory": "digests"})
    world.stories(1)
    [delivery_id] = world.plan()
    outcome = world.deliver(delivery_id, ctx=off).outcome
    assert outcome is not None and (outcome.error, outcome.permanent) == (FILE_CHANNEL_OFF, True)
    assert files_under(tmp_path) == []


def test_the_root_setting_per_mode() -> None:
    production: dict[str, Any] = {
        "database_url": "postgresql://postgres@127.0.0.1/x",
        "broker_url": "redis://127.0.0.1:6379/0",
        "encryption_keys": "",
    }
    assert Settings(data_dir=Path("d")).file_channel_folder == Path("d/digests")
    assert Settings.model_construct(**production).file_channel_folder is None
    rooted = Settings.model_construct(**production, file_channel_root=Path("/srv/digests"))
    assert rooted.file_channel_folder == Path("/srv/digests")
    assert Settings(file_channel_root="").file_channel_root is None
