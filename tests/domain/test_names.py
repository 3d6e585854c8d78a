import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safevine.domain.errors import FieldError
from safevine.domain.names import PersonName, clean_name, fold_name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("LÓPEZ", "lopez"),
        ("José", "JOSE"),
        ("Nuñez", "NUNEZ"),
        ("Müller", "muller"),
        ("O’Brien", "o'brien"),
        ("Jean\u2010Baptiste", "jean-baptiste"),
        ("María  José", "maria jose"),
        ("Ｊｏｓｅ", "jose"),
        ("STRASSE", "straße"),
    ],
)
def test_folded_keys_match(a: str, b: str) -> None:
    assert fold_name(a) == fold_name(b)


@pytest.mark.parametrize(("a", "b"), [("Lopez", "Lopes"), ("Jose", "Josefa"), ("Ana", "Anna")])
def test_different_names_stay_different(a: str, b: str) -> None:
    assert fold_name(a) != fold_name(b)


def test_display_spelling_is_kept() -> None:
    name = PersonName.parse("  José ", "LÓPEZ  García")
    assert (name.given, name.family) == ("José", "LÓPEZ García")
    assert name.key == ("jose", "lopez garcia")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("123", "no letters"),
        ("Ana\u200b", "invisible"),
        ("x" * 101, "longer than"),
        ("ß" * 51, "as matched"),
    ],
)
def test_bad_names_are_rejected(raw: str, reason: str) -> None:
    with pytest.raises(FieldError) as caught:
        clean_name(raw, "person.given_name")
    assert caught.value.field == "person.given_name"
    assert reason in caught.value.reason


# Latin letters with and without diacritics, the scripts of nearly every name in the feeds.
# Dotless i is left out: it folds to itself, while its capital folds to a dotted i.
latin = st.characters(
    min_codepoint=0x41, max_codepoint=0x17F, categories=["Lu", "Ll"], exclude_characters="\u0131"
)


@given(st.text(min_size=1, max_size=40))
def test_folding_is_idempotent(text: str) -> None:
    assert fold_name(fold_name(text)) == fold_name(text)


@given(st.text(alphabet=latin, min_size=1, max_size=30))
def test_latin_names_fold_the_same_in_any_case(text: str) -> None:
    assert fold_name(text.upper()) == fold_name(text.lower()) == fold_name(text)


@given(st.text(alphabet=latin, min_size=1, max_size=30))
def test_folded_latin_names_are_plain_ascii_or_letters_without_marks(text: str) -> None:
    folded = fold_name(text)
    assert not any(unicodedata.combining(ch) for ch in unicodedata.normalize("NFD", folded))
