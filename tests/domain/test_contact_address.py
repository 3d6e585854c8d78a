"""Webhook addresses as the domain accepts them: no lookups, only what the text says."""

import pytest

from safevine.domain.contact_address import Channel, normalise_address
from safevine.domain.errors import FieldError


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.org/safevine",
        "https://hooks.example.org:8443/safevine?case=1",
        "http://127.0.0.1:8080/hook",
        "https://[2606:4700:4700::1111]/hook",
    ],
)
def test_http_and_https_urls_are_accepted_as_written(url: str) -> None:
    # https only, and where the host leads, are decided where settings and the network
    # are known (the tests and the demo send to http on loopback).
    assert normalise_address(Channel.WEBHOOK, f"  {url} ") == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.org/", "is not an http(s) URL"),
        ("file:///etc/passwd", "is not an http(s) URL"),
        ("https:///hook", "is not an http(s) URL"),
        ("https://[::1/hook", "is not an http(s) URL"),
        ("https://hooks.example.org:99999/hook", "is not an http(s) URL"),
        ("https://hooks.example.org:port/hook", "is not an http(s) URL"),
        ("https://user:pw@hooks.example.org/", "must not contain a user name or password"),
        ("https://@hooks.example.org/", "must not contain a user name or password"),
        ("http://2130706433/hook", "must not spell an IP address other than as a.b.c.d"),
        ("http://0x7f.1/hook", "must not spell an IP address other than as a.b.c.d"),
        ("http://127.1/hook", "must not spell an IP address other than as a.b.c.d"),
        ("http://0177.0.0.1/hook", "must not spell an IP address other than as a.b.c.d"),
        ("https://127.0.0.1./hook", "must not spell an IP address other than as a.b.c.d"),
    ],
)
def test_other_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(FieldError) as refused:
        normalise_address(Channel.WEBHOOK, url)
    assert (refused.value.field, refused.value.reason) == ("address", reason)
