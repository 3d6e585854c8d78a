"""English and Spanish, chosen by Accept-Language or an explicit switch, never a cookie."""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from safevine.i18n import LOCALES, negotiate
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
    assert negotiate(None, "fr-FR, es;q=0.8, en;q=0.7") == "es"
    assert negotiate(None, "en-US,es;q=0.9") == "en"
    assert negotiate("es", "en") == "es"
    assert negotiate("de", "de") == "en"
    assert negotiate(None, "es;q=0, en;q=0.1") == "en"
    assert negotiate(None, None) == "en"


def test_every_message_in_the_code_is_translated_to_spanish(tmp_path: Path) -> None:
    template = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "N_",
            "-o",
            str(template),
            "--no-location",
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    with template.open("rb") as handle:
        wanted = {m.id for m in read_po(handle) if m.id}
    with (LOCALES / "es" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    assert wanted - translated == set()
