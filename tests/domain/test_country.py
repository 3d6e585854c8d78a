import pycountry
import pytest
from hypothesis import given
from hypothesis import strategies as st

from safevine.domain.country import country_name, resolve_country
from safevine.domain.errors import FieldError


@pytest.mark.parametrize("raw", ["Mexico", "México", "MX", "MEX", "mx", "mexico", " MÉXICO "])
def test_mexico_in_every_spelling(raw: str) -> None:
    assert resolve_country(raw) == "MX"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("Guatemala", "GT"),
        ("Estados Unidos", "US"),
        ("United States of America", "US"),
        ("Alemania", "DE"),
        ("Haití", "HT"),
        ("El Salvador", "SV"),
        ("HND", "HN"),
        ("Venezuela", "VE"),
        ("Bolivia", "BO"),
        ("Brasil", "BR"),
        ("Perú", "PE"),
    ],
)
def test_english_and_spanish_names_and_codes(raw: str, code: str) -> None:
    assert resolve_country(raw) == code


@pytest.mark.parametrize("raw", ["", "Atlantis", "XX", "XXX", "Mexic", "12"])
def test_unknown_countries_are_rejected(raw: str) -> None:
    with pytest.raises(FieldError) as caught:
        resolve_country(raw, "person.country_of_birth")
    assert caught.value.field == "person.country_of_birth"


@given(st.sampled_from(list(pycountry.countries)))
def test_every_iso_country_resolves_by_codes_and_both_languages(country: object) -> None:
    alpha_2 = country.alpha_2  # type: ignore[attr-defined]
    assert resolve_country(alpha_2) == alpha_2
    assert resolve_country(country.alpha_3) == alpha_2  # type: ignore[attr-defined]
    for language in ("en", "es"):
        assert resolve_country(country_name(alpha_2, language)) == alpha_2


def test_names_are_shown_in_the_page_language() -> None:
    assert country_name("MX", "es") == "México"
    assert country_name("MX", "en") == "Mexico"
    assert country_name("US", "es") == "Estados Unidos"


@pytest.mark.parametrize(
    "raw",
    ["Mexique", "墨西哥", "المكسيك", "Мексика", "мексика", "Meksiko", "México", "Mexico"],
)
def test_a_country_may_be_typed_in_any_of_our_languages(raw: str) -> None:
    assert resolve_country(raw) == "MX"


@pytest.mark.parametrize(
    ("language", "name"),
    [("fr", "Guatemala"), ("zh", "危地马拉"), ("ar", "غواتيمالا"), ("ru", "Гватемала")],
)
def test_names_come_in_the_readers_language(language: str, name: str) -> None:
    assert country_name("GT", language) == name
    assert resolve_country(name) == "GT"  # and are read back


def test_every_country_name_in_every_language_reads_back_to_its_country() -> None:
    from safevine.languages import CODES

    for country in pycountry.countries:
        for language in CODES:
            assert resolve_country(country_name(country.alpha_2, language)) == country.alpha_2


def test_a_short_name_is_a_name_and_a_code_in_capitals_a_code() -> None:
    assert resolve_country("Nga") == "RU"  # Russia, in Vietnamese
    assert resolve_country("NGA") == "NG"  # Nigeria's ISO alpha-3 code
    assert resolve_country("mex") == resolve_country("MX") == "MX"
