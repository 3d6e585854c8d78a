"""Every catalog is complete and safe to use: each message of the source code and templates
is in it, translated, not fuzzy (a fuzzy entry is a guess, and is never shown), and with
the same placeholders as the source, so that no message fails to format or loses a name,
date or link in one language. Adding a language is adding a catalog; this test then
checks it too."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from safevine.languages import CODES, LOCALES, SOURCE

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]")
BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
TRANSLATED = [code for code in CODES if code != SOURCE]


@pytest.fixture(scope="module")
def source_messages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Every message the code and templates mark now (not the committed .pot, which could
    be stale): msgid -> msgid_plural."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "N_", "--no-location", "-o", str(pot), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with pot.open("rb") as handle:
        catalog = read_po(handle)
    found: dict[str, str | None] = {}
    for message in catalog:
        if message.id:
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            found[key] = message.id[1] if isinstance(message.id, tuple) else None
    assert len(found) > 200
    return found


def test_nine_languages_at_least() -> None:
    assert {"en", "es", "fr", "zh", "vi", "pt", "ru", "ar", "so"} <= set(CODES)


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_catalog_has_every_message_translated_with_its_placeholders(
    code: str, source_messages: dict[str, str | None]
) -> None:
    with (LOCALES / code / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=code)
    problems = []
    entries = {}
    for message in catalog:
        if message.id:
            entries[message.id[0] if isinstance(message.id, tuple) else message.id] = message
    for msgid, plural in source_messages.items():
        entry = entries.get(msgid)
        if entry is None:
            problems.append(f"missing: {msgid!r}")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if plural is not None and len(strings) != catalog.num_plurals:
            problems.append(f"{len(strings)} of {catalog.num_plurals} plural forms: {msgid!r}")
        wanted = sorted(set(PLACEHOLDER.findall(plural or msgid)))
        for string in strings:
            if not string:
                problems.append(f"untranslated: {msgid!r}")
            elif sorted(set(PLACEHOLDER.findall(string))) != wanted:
                problems.append(f"placeholders differ: {msgid!r} -> {string!r}")
            elif BIDI_CONTROLS.search(string):
                # Direction is the templates' business (<bdi>, dir); a stray control
                # character in a catalog would flip text in a way nobody can see.
                problems.append(f"bidi control character: {msgid!r}")
    assert problems == [], f"{code}: {len(problems)} problems\n" + "\n".join(problems)


@pytest.mark.parametrize("code", TRANSLATED)
def test_each_catalog_keeps_a_glossary(code: str) -> None:
    glossary = LOCALES / code / "GLOSSARY.md"
    assert glossary.exists(), f"{code} has no GLOSSARY.md beside its catalog"
    assert "A-number" in glossary.read_text()
