"""The ``file`` channel: each digest written as Markdown and/or HTML into a folder.

Files are named after the digest's creation time and id, written to a temporary name
and renamed, so a reader never sees half a digest and a repeated send overwrites the
same files instead of adding copies.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.delivery.channels import FileConfig
from core.delivery.model import DigestView
from core.delivery.outcome import Outcome
from core.delivery.render_html import render_html, render_markdown

#: File suffix per format.
SUFFIXES = {"markdown": ".md", "html": ".html"}


def digest_file_stem(digest: DigestView) -> str:
    return f"{digest.created_at.strftime('%Y%m%dT%H%M%SZ')}-{digest.id}"


def send_file(config: FileConfig, digest: DigestView) -> Outcome:
    """Write the digest's files; the paths written are the response."""
    folder = Path(config.directory)
    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for fmt in config.formats:
            text = render_markdown(digest) if fmt == "markdown" else render_html(digest)
            path = folder / (digest_file_stem(digest) + SUFFIXES[fmt])
            partial = path.with_name(path.name + ".part")
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)
            written.append(str(path))
    except OSError as exc:
        return Outcome.failed(f"cannot write digest file: {exc}")
    return Outcome.sent(response=", ".join(written))
