"""Every fixture digest's HTML in headless Chromium, as a phone (375 px) and a desktop
mail pane (600 px) show it, light and dark: no horizontal scrolling, no request for
anything (no image, font or stylesheet from anywhere), every story shown.

With ``NEWSMON_TEST_SCREENSHOTS=<folder>`` the showcase digest's screenshots are written
there (``digest-desktop.png``, ``digest-phone.png``: the README's pictures).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from core.delivery.digest_links import DigestLinks
from core.delivery.presenting import present
from core.delivery.render_html import render_html
from tests.support.browser import chromium
from tests.support.digest_fixtures import NOW, PUBLIC_URL, fixtures

#: Viewport widths: a phone, and the digest's own width in a desktop mail pane.
WIDTHS = {"phone": 375, "desktop": 600}
#: Height of the README's pictures (the top of the digest).
SCREENSHOT_HEIGHT = 1000


def _emulate(browser: Any, width: int, *, dark: bool) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500},
    )
    scheme = "dark" if dark else "light"
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )


def _layout(browser: Any) -> dict[str, Any]:
    result: dict[str, Any] = browser.execute_script(
        """
        const doc = document.documentElement;
        return {
          scrollWidth: Math.max(doc.scrollWidth, document.body.scrollWidth),
          innerWidth: window.innerWidth,
          resources: performance.getEntriesByType('resource').map(e => e.name),
          text: document.body.innerText,
          h1: getComputedStyle(document.querySelector('h1')).color,
          card: getComputedStyle(document.querySelector('.header')).backgroundColor,
        };
        """
    )
    return result


def _screenshot(browser: Any, path: Path) -> None:
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {
                "x": 0,
                "y": 0,
                "width": browser.execute_script("return window.innerWidth"),
                "height": SCREENSHOT_HEIGHT,
                "scale": 1,
            },
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.slow
def test_every_fixture_digest_fits_phone_and_desktop_and_fetches_nothing(tmp_path: Path) -> None:
    links = DigestLinks(PUBLIC_URL, [b"k" * 32])
    screenshots = os.environ.get("NEWSMON_TEST_SCREENSHOTS")
    with chromium() as browser:
        browser.execute_cdp_cmd("Network.enable", {})
        for name, digest in fixtures().items():
            shown = present(digest, now=NOW, links=links, channel_id="ch", recipient="a@x.example")
            page = tmp_path / f"{name.replace(' ', '-')}.html"
            page.write_text(render_html(shown), encoding="utf-8")
            for device, width in WIDTHS.items():
                for dark in (False, True):
                    _emulate(browser, width, dark=dark)
                    browser.get(page.as_uri())
                    layout = _layout(browser)
                    where = f"{name} at {width} px{' (dark)' if dark else ''}"
                    assert layout["innerWidth"] == width, where
                    assert layout["scrollWidth"] <= width, f"{where} scrolls sideways"
                    assert layout["resources"] == [], f"{where} fetched {layout['resources']}"
                    for story in digest.stories:
                        assert " ".join(story.title.split()) in layout["text"], where
                    light_text = layout["h1"] in ("rgb(230, 233, 237)",)
                    assert light_text == dark, f"{where}: heading colour {layout['h1']}"
                    if screenshots and name == "showcase" and not dark:
                        _screenshot(browser, Path(screenshots) / f"digest-{device}.png")
