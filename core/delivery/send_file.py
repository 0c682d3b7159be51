"""The ``file`` channel: each digest written as Markdown and/or HTML into a folder.

A tenant writes only below the operator's root (``NEWSMON_FILE_CHANNEL_ROOT``), into its
own organization's subfolder: ``<root>/<organizationId>/<directory>/``, where
``directory`` is a relative name that cannot name ``..`` or an absolute path
(:class:`~core.delivery.channels.FileConfig`). A symlink cannot lead out either: below the
root every folder is opened relative to its parent's descriptor with ``O_NOFOLLOW``, and
files are created there exclusively under a fresh temporary name (``O_EXCL``: never
through a planted symlink or hard link) and renamed into place, which replaces a link of
that name instead of following it. In production mode without a root there is no file
channel at all.

Files are named after the digest's creation time and id, so a reader never sees half a
digest and a repeated send overwrites the same files instead of adding copies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.delivery.channels import FileConfig
from core.delivery.model import DigestView
from core.delivery.outcome import Outcome
from core.delivery.presenting import Show
from core.delivery.render_html import render_html, render_markdown

#: File suffix per format.
SUFFIXES = {"markdown": ".md", "html": ".html"}
#: Why a file channel cannot be created or sent in production mode without a root.
FILE_CHANNEL_OFF = (
    "the file channel is off: production mode writes no files unless "
    "NEWSMON_FILE_CHANNEL_ROOT is set"
)
#: Permissions of created folders and files (before the umask).
FOLDER_MODE = 0o755
FILE_MODE = 0o644
#: Errors meaning a path component is a symlink or not a folder: never retried.
_LINK_ERRORS = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EMLINK})


def digest_file_stem(digest: DigestView) -> str:
    return f"{digest.created_at.strftime('%Y%m%dT%H%M%SZ')}-{digest.id}"


def channel_folder(root: Path, organization_id: str, directory: str) -> Path:
    """Where a channel's files go (for messages; writing goes through descriptors)."""
    return root / organization_id / directory


@contextlib.contextmanager
def _open_below(root: Path, parts: Sequence[str]) -> Iterator[int]:
    """A descriptor of ``root/parts...``, each part created if missing and opened relative
    to its parent with ``O_NOFOLLOW`` (a symlink anywhere below the root fails: ELOOP)."""
    root.mkdir(parents=True, exist_ok=True)  # the operator's folder, links allowed
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part or "\0" in part:
                raise ValueError(f"not a folder name: {part!r}")  # validated before; a bug
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, FOLDER_MODE, dir_fd=fd)
            child = os.open(
                part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
            )
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _write(folder: int, name: str, text: str) -> None:
    """Write ``name`` in the folder atomically: a new temporary file, then a rename."""
    partial = f".{name}.{secrets.token_hex(6)}.part"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(partial, flags, FILE_MODE, dir_fd=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(partial, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial, dir_fd=folder)
        raise


def send_file(
    config: FileConfig,
    digest: DigestView,
    show: Show,
    *,
    root: Path | None,
    organization_id: str,
) -> Outcome:
    """Write the digest's files below ``root``; the paths written are the response."""
    if root is None:
        return Outcome.failed(FILE_CHANNEL_OFF, permanent=True)
    folder = channel_folder(root, organization_id, config.directory)
    written = []
    try:
        with _open_below(root, [organization_id, *config.directory.split("/")]) as fd:
            shown = show()
            for fmt in config.formats:
                text = render_markdown(shown) if fmt == "markdown" else render_html(shown)
                name = digest_file_stem(digest) + SUFFIXES[fmt]
                _write(fd, name, text)
                written.append(str(folder / name))
    except OSError as exc:
        if exc.errno in _LINK_ERRORS:
            return Outcome.failed(
                f"cannot write below {folder}: a part of the path is a symlink or not a "
                "folder (never followed)",
                permanent=True,
            )
        return Outcome.failed(f"cannot write digest file: {exc}")
    return Outcome.sent(response=", ".join(written))
