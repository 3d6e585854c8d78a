"""English and Spanish, chosen by Accept-Language or an explicit switch, never a cookie."""

from pathlib import Path

from safevine.i18n import negotiate
from tests.canaries import PUBLIC
from tests.web.conftest import Live

ROOT = Path(__file__).parents[2]


def test_accept_language_picks_spanish(live: Live) -> None:
    page = live.client.get("/", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert '<html lang="es" dir="ltr">' in page.text and "Buscar a una persona" in page.text
    assert page.headers["content-language"] == "es"


def test_the_switch_needs_no_cookie(live: Live) -> None:
    live.client.cookies.clear()
    page = live.client.get("/?lang=es", headers={"Accept-Language": "en"})
    assert "Salir de este sitio ahora" in page.text
    assert 'href="/?lang=en"' in page.text
    assert all(c.startswith("sv_csrf=") for c in page.headers.get_list("set-cookie"))


def test_results_and_countries_in_spanish(live: Live) -> None:
    token = live.csrf()
    page = live.client.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token, "lang": "es"})
    assert "México" in page.text and "Bajo custodia" in page.text
    api = live.client.post("/api/v1/search?lang=es", json=PUBLIC.by_a_number()).json()
    assert api["results"][0]["custody_status_text"] == "Bajo custodia"
    assert api["results"][0]["country_of_birth_name"] == "México"


def test_api_errors_in_spanish(live: Live) -> None:
    response = live.client.post(
        "/api/v1/search", json={"a_number": "1"}, headers={"Accept-Language": "es"}
    )
    messages = [e["message"] for e in response.json()["errors"]]
    assert "Escriba el país de nacimiento." in messages
    assert any("número A" in m for m in messages)


def test_negotiation() -> None:
    assert negotiate(None, "fr-FR, es;q=0.8, en;q=0.7") == "fr"
    assert negotiate(None, "de-DE, so;q=0.5, en;q=0.1") == "so"
    assert negotiate(None, "zh-Hans-CN") == negotiate(None, "zh-CN") == "zh"
    # Simplified characters are not offered to a reader of Traditional ones.
    assert negotiate(None, "zh-TW, en;q=0.5") == "en"
    assert negotiate(None, "pt-PT") == negotiate(None, "pt-BR") == "pt"
    assert negotiate(None, "ar-EG") == "ar" and negotiate("vi-VN", None) == "vi"
    assert negotiate(None, "en-US,es;q=0.9") == "en"
    assert negotiate("es", "en") == "es"
    assert negotiate("de", "de") == "en"
    assert negotiate(None, "es;q=0, en;q=0.1") == "en"
    assert negotiate(None, None) == "en"
