"""Every text message in every language, measured: within its segment target, its link
whole, nothing turned into question marks, and `docs/sms-segments.md` the table of it."""

from pathlib import Path

import pytest

from safevine.domain.sms_text import is_gsm7
from safevine.languages import CODES
from safevine.notify import sms_sizes

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sms-segments.md"
SIZES = sms_sizes.sizes()


def test_the_docs_table_is_the_one_the_catalogs_give() -> None:
    assert DOCS.read_text() == sms_sizes.table(), (
        "run `python -m safevine.notify.sms_sizes > docs/sms-segments.md`"
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s.language}-{s.template}")
def test_each_text_keeps_to_its_segments_and_its_link(size: sms_sizes.Size) -> None:
    gsm7 = is_gsm7(size.text)
    # One GSM-7 segment holds as much as two UCS-2 ones; a discreet text in UCS-2 cannot
    # fit one beside its link (see the docs).
    assert size.segments <= (1 if gsm7 else 2), (size.text, size.length)
    if size.template != "confirmation code":
        assert sms_sizes.URL in size.text  # whole: a text is shortened, never its link
    assert "?" not in size.text, size.text  # an alphabet lost in transliteration
    if size.discreet:
        assert "María" not in size.text and "Mar" not in size.text
        assert "SOUTH TEXAS" not in size.text


@pytest.mark.parametrize("language", ["ar", "ru", "zh", "vi"])
def test_languages_gsm7_cannot_write_go_as_written(language: str) -> None:
    texts = [s.text for s in SIZES if s.language == language]
    assert not any(is_gsm7(t) for t in texts)
    own = {"ar": "ت", "ru": "е", "zh": "的", "vi": "đ"}[language]
    assert any(own in t.lower() for t in texts), texts[:3]


def test_every_language_is_measured() -> None:
    assert {s.language for s in SIZES} == set(CODES)
