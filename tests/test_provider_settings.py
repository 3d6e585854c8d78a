"""Providers and relays to fail over to, as the environment names them."""

import pytest

from safevine.config import ConfigError, Settings


def test_further_providers_and_relays_come_in_order_each_named_by_its_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAFEVINE_SMS_API_BASE", "https://api.twilio.com/")
    monkeypatch.setenv("SAFEVINE_SMS_AUTH_TOKEN", "first token")
    monkeypatch.setenv("SAFEVINE_SMS_3_API_BASE", "https://api.twilio.com")
    monkeypatch.setenv("SAFEVINE_SMS_3_ACCOUNT_SID", "AC3")
    monkeypatch.setenv("SAFEVINE_SMS_3_AUTH_TOKEN", "third token")
    monkeypatch.setenv("SAFEVINE_SMS_3_FROM", "+15550003333")
    monkeypatch.setenv("SAFEVINE_SMS_2_API_BASE", "https://sms.other.example/api/")
    monkeypatch.setenv("SAFEVINE_SMTP_2_HOST", "relay2.agency.example")
    monkeypatch.setenv("SAFEVINE_SMTP_2_PORT", "587")
    monkeypatch.setenv("SAFEVINE_SMTP_2_SECURITY", "starttls")
    settings = Settings.from_env()
    phones = settings.phone_providers()
    # Two accounts at one host are told apart by their place.
    assert [p.name for p in phones] == ["api.twilio.com#1", "sms.other.example", "api.twilio.com#3"]
    assert phones[1].api_base == "https://sms.other.example/api"
    third = phones[2]
    assert (third.account_sid, third.sms_from, third.voice_from) == (
        "AC3",
        "+15550003333",
        "+15550003333",
    )
    # Tokens never appear in a settings dump.
    assert "third token" not in repr(settings)
    relays = settings.smtp_relays()
    assert [(r.name, r.port, r.security) for r in relays] == [
        ("127.0.0.1", 25, "none"),
        ("relay2.agency.example", 587, "starttls"),
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SAFEVINE_SMS_2_API_BASE", "sms.other.example"),
        ("SAFEVINE_SMS_2_API_BASE", "ftp://sms.other.example"),
        ("SAFEVINE_SMTP_2_SECURITY", "ssl"),
        ("SAFEVINE_SMTP_2_PORT", "0"),
        ("SAFEVINE_FAILOVER_MINIMUM", "-1"),
    ],
)
def test_nonsense_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("SAFEVINE_SMTP_2_HOST", "relay2.agency.example")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Settings.from_env()
