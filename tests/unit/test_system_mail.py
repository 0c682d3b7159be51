"""The operator's relay settings (core/system_mail.py): URL, sender, header safety."""

from __future__ import annotations

import pytest

from core.config import load_settings
from core.errors import ConfigError
from core.system_mail import SmtpRelay, SystemMailer, parse_sender, parse_smtp_url


@pytest.mark.parametrize(
    ("url", "relay"),
    [
        ("smtp://mail.example.com", SmtpRelay("mail.example.com", 587, "starttls")),
        ("smtps://mail.example.com", SmtpRelay("mail.example.com", 465, "tls")),
        ("smtp://127.0.0.1:2525?security=none", SmtpRelay("127.0.0.1", 2525, "none")),
        ("smtp://localhost?security=none", SmtpRelay("localhost", 25, "none")),
        (
            "smtp://ops%40example.com:p%3Ass@mail.example.com:587",
            SmtpRelay("mail.example.com", 587, "starttls", "ops@example.com", "p:ss"),
        ),
    ],
)
def test_smtp_url(url: str, relay: SmtpRelay) -> None:
    assert parse_smtp_url(url) == relay
    assert parse_smtp_url(url).password == relay.password


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "smtp://",
        "smtp://mail.example.com:99999",
        "smtp://mail.example.com?security=ssl",
        "smtps://mail.example.com?security=none",
        "smtp://mail.example.com?secure=1",
    ],
)
def test_bad_smtp_url_names_the_setting_and_never_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_smtp_url(url.replace("://", "://user:hunter2@", 1))
    assert raised.value.setting == "NEWSMON_SMTP_URL"
    assert "hunter2" not in str(raised.value)


def test_the_password_is_not_in_the_relays_repr() -> None:
    assert "hunter2" not in repr(parse_smtp_url("smtp://u:hunter2@mail.example.com"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("noreply@example.com", "noreply@example.com"),
        ("newsmon <noreply@example.com>", "newsmon <noreply@example.com>"),
    ],
)
def test_sender(value: str, expected: str) -> None:
    assert parse_sender(value) == expected


@pytest.mark.parametrize("value", ["newsmon", "a@b", "x <noreply@example.com>\r\nBcc: e@x.io"])
def test_bad_sender_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_sender(value)
    assert raised.value.setting == "NEWSMON_MAIL_FROM"


def test_relay_and_sender_go_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSMON_SMTP_URL", "smtp://mail.example.com")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.setting == "NEWSMON_MAIL_FROM"
    monkeypatch.setenv("NEWSMON_MAIL_FROM", "noreply@example.com")
    settings = load_settings()
    assert SystemMailer.from_settings(settings) is not None


def test_a_subject_never_breaks_into_headers() -> None:
    mailer = SystemMailer(parse_smtp_url("smtp://mail.example.com"), "noreply@example.com")
    message = mailer.compose("ada@example.com", "Join Acme\r\nBcc: eve@example.com", "body")
    assert message["Subject"] == "Join Acme Bcc: eve@example.com"
    assert message["Bcc"] is None
