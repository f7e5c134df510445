"""Channel views never show a secret: short ones not even in part, credentials in URLs
removed (libs.domain.channels.redacted)."""

from __future__ import annotations

from libs.domain.channels import HttpChannel, SmtpChannel, WhatsAppChannel, redacted


def test_short_secrets_are_not_shown_even_in_part() -> None:
    """Before: a 4-character password was shown whole as its "last 4 characters"."""
    email = SmtpChannel(id="e", host="smtp.example.com", password="abcd", from_address="a@b.c")
    assert redacted(email)["password"] == "…"
    long = SmtpChannel(id="e", host="h", password="hunter2-pass-5555", from_address="a@b.c")
    assert redacted(long)["password"] == "…5555"


def test_credentials_inside_urls_are_removed() -> None:
    http = HttpChannel(
        id="h",
        base_url="https://user:s3cret@crm.example.com/api?api_key=abc123&team=x",
        headers={"X-Api-Key": "k"},
    )
    view = redacted(http)
    assert "s3cret" not in view["base_url"] and "abc123" not in view["base_url"]
    assert (
        view["base_url"].startswith("https://user:") and "crm.example.com/api" in view["base_url"]
    )
    assert view["headers"] == {"X-Api-Key": "…"}
    wa = WhatsAppChannel(
        id="w",
        phone_number_id="1",
        access_token="t" * 20,
        api_base="https://g.example/v21.0?token=zz",
    )
    assert "zz" not in redacted(wa)["api_base"]
    plain = WhatsAppChannel(id="w", phone_number_id="1", access_token="t" * 20)
    assert redacted(plain)["api_base"] == "https://graph.facebook.com/v21.0"
