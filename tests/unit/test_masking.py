"""Masking of secrets for display and redaction of free text (core/masking.py)."""

from __future__ import annotations

import pytest

from core.masking import REDACT_MIN_CHARS, mask, mask_fields, mask_url, redact, url_secrets

SECRET = "hooks-secret-Zx81QvLp"
SLACK = "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx"
DISCORD_TOKEN = "abcdefghijklmnop_qrstuvwxyz-abcdefghijklmnopqrstuvwxyzabcdefghijkl"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TEAMS_GROUP = "a1b2c3d4-e5f6-7890-abcd-ef1234567890@b1b2c3d4-e5f6-7890-abcd-ef1234567890"
TEAMS_TOKEN = "abcdef0123456789abcdef0123456789"
TEAMS_OWNER = "c1b2c3d4-e5f6-7890-abcd-ef1234567890"

#: (URL, its secret parts, the exact masked form), real-shaped and mostly lower case.
URLS = [
    (SLACK, ["T0123ABCD", "B0123ABCD", "abcdefghijklmnopqrstuvwx"], None),
    (
        "slack://T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx/#general",
        ["T0123ABCD", "B0123ABCD", "abcdefghijklmnopqrstuvwx", "general"],
        "slack://****/****/****/#****",
    ),
    (
        f"https://discord.com/api/webhooks/123456789012345678/{DISCORD_TOKEN}",
        ["123456789012345678", DISCORD_TOKEN],
        "https://discord.com/api/webhooks/****/****",
    ),
    (
        f"discord://123456789012345678/{DISCORD_TOKEN}",
        ["123456789012345678", DISCORD_TOKEN],
        "discord://****/****",
    ),
    ("ntfy://mysecrettopic", ["mysecrettopic"], "ntfy://****"),
    ("ntfys://ntfy.sh/mysecrettopic", ["mysecrettopic"], "ntfys://ntfy.sh/****"),
    ("https://ntfy.sh/mysecrettopic", ["mysecrettopic"], "https://ntfy.sh/****"),
    (
        "ntfys://user:hunter22@ntfy.example.com/alerts?priority=high",
        ["user", "hunter22", "alerts"],
        "ntfys://****:****@ntfy.example.com/****?priority=****",
    ),
    (f"tgram://{TELEGRAM_TOKEN}/987654321", [TELEGRAM_TOKEN, "987654321"], "tgram://****/****"),
    (
        f"https://api.telegram.org/bot{TELEGRAM_TOKEN}/sendMessage?chat_id=987654321",
        [TELEGRAM_TOKEN, "987654321"],
        "https://api.telegram.org/****/****?chat_id=****",
    ),
    (
        f"msteams://acme/{TEAMS_GROUP}/{TEAMS_TOKEN}/{TEAMS_OWNER}",
        [TEAMS_GROUP, TEAMS_TOKEN, TEAMS_OWNER],
        "msteams://****/****/****/****",
    ),
    (
        f"https://acme.webhook.office.com/webhookb2/{TEAMS_GROUP}/IncomingWebhook/"
        f"{TEAMS_TOKEN}/{TEAMS_OWNER}",
        [TEAMS_GROUP, TEAMS_TOKEN, TEAMS_OWNER],
        "https://acme.webhook.office.com/webhookb2/****/****/****/****",
    ),
    (
        "json://user:pa55word@example.com/path?token=abcsecret",
        ["user", "pa55word", "path", "abcsecret"],
        "json://****:****@example.com/****?token=****",
    ),
    ("mailto://user:pa55word@example.com", ["user", "pa55word"], "mailto://****:****@example.com"),
    (
        "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@aBcDeF01/",
        ["uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "aBcDeF01"],
        None,
    ),
    (
        "https://example.com:8443/hook?token=abc&mode=post",
        ["hook", "abc", "post"],
        "https://example.com:8443/****?token=****&mode=****",
    ),
    ("https://10.0.0.5/a#Frag9Secret", ["Frag9Secret"], "https://10.0.0.5/****#****"),
    ("no-scheme-Secret42", ["no-scheme-Secret42"], "****"),
    ("Tok3n Sec://x", ["Tok3n Sec://x"], "****"),
]


@pytest.mark.parametrize(("url", "secrets", "expected"), URLS)
def test_mask_url_keeps_scheme_and_host_and_never_leaks_a_secret(
    url: str, secrets: list[str], expected: str | None
) -> None:
    masked = mask_url(url)
    for secret in secrets:
        assert secret not in masked
    if expected is not None:
        assert masked == expected


def test_mask_url_keeps_the_fixed_words_of_well_known_webhooks() -> None:
    assert mask_url(SLACK) == "https://hooks.slack.com/services/****/****/****"
    # the same words on another host are masked like any other path
    assert mask_url("https://example.com/services/abc") == "https://example.com/****/****"
    # and only as leading words: a later "webhooks" is a path segment like any other
    assert mask_url("https://discord.com/x/webhooks/1") == "https://discord.com/****/****/****"


@pytest.mark.parametrize(("url", "secrets", "expected"), URLS)
def test_masking_a_masked_url_changes_nothing(
    url: str, secrets: list[str], expected: str | None
) -> None:
    assert mask_url(mask_url(url)) == mask_url(url)


def test_an_old_style_mask_is_masked_again_for_display() -> None:
    # stored before every segment was masked: lower-case tokens were kept
    old = "https://hooks.slack.com/services/****/****/lowercasetokenvalue"
    assert mask_url(old) == "https://hooks.slack.com/services/****/****/****"


@pytest.mark.parametrize(("url", "secrets", "expected"), URLS)
def test_redact_removes_every_secret_of_a_url_from_free_text(
    url: str, secrets: list[str], expected: str | None
) -> None:
    secrets = [s for s in secrets if len(s) >= REDACT_MIN_CHARS]
    text = " | ".join([f"POST {url} failed", *(f"topic '{s}': 401" for s in secrets)])
    cleaned = redact(text, url_secrets(url))
    for secret in secrets:
        assert secret not in cleaned


def test_redact_covers_encoded_forms_and_pieces_of_a_part() -> None:
    secrets = url_secrets(f"tgram://{TELEGRAM_TOKEN}/987654321")
    bot_token = TELEGRAM_TOKEN.split(":")[1]
    text = f"bot {bot_token} and 123456789%3A{bot_token} refused"
    assert bot_token not in redact(text, secrets)


def test_redact_removes_a_secret_cut_short_at_the_end_of_an_excerpt() -> None:
    excerpt = "<h1>404</h1> no route for /notify/mysecret"
    assert (
        redact(excerpt, url_secrets("ntfy://mysecrettopic"))
        == "<h1>404</h1> no route for /notify/****"
    )


def test_redact_leaves_short_parts_and_other_text_alone() -> None:
    assert redact("a 12 b", url_secrets("https://example.com/12")) == "a 12 b"
    assert redact("HTTP 401 from example.com", url_secrets(SLACK)) == "HTTP 401 from example.com"


@pytest.mark.parametrize("value", [SECRET, "hunter2", "", "x"])
def test_mask_never_leaks_the_secret(value: str) -> None:
    masked = mask(value)
    assert masked.endswith("(masked)")
    if value:
        assert value not in masked
    assert len(masked) - len("…(masked)") <= len(value) // 4


def test_mask_keeps_a_short_hint_of_long_values() -> None:
    assert mask(SECRET) == "hoo…(masked)"
    assert mask("hunter2") == "…(masked)"


def test_mask_fields() -> None:
    masked = mask_fields({"token": SECRET, "n": 3, "other": 7}, {"token", "other"})
    assert masked == {"token": "hoo…(masked)", "n": 3, "other": "…(masked)"}
