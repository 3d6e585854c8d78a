import pytest
from hypothesis import given
from hypothesis import strategies as st

from safevine.domain.a_number import format_a_number, normalise_a_number
from safevine.domain.errors import FieldError

nine_digits = st.from_regex(r"[0-9]{9}", fullmatch=True).filter(lambda d: set(d) != {"0"})


@pytest.mark.parametrize(
    "raw",
    [
        "A012345678",
        "A-012-345-678",
        "12345678",
        "012345678",
        "a012345678",
        " A 012 345 678 ",
        "０１２３４５６７８",
    ],
)
def test_every_spelling_means_the_same_number(raw: str) -> None:
    assert normalise_a_number(raw) == "012345678"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "is empty"),
        ("1234567", "has 7 digits"),
        ("1234567890", "has 10 digits"),
        ("A12345678X", "is not an A-number"),
        ("B012345678", "is not an A-number"),
        ("012--345-678", "is not an A-number"),
        ("A-000-000-000", "all zeros"),
        ("١٢٣٤٥٦٧٨٩", "is not an A-number"),
    ],
)
def test_anything_else_is_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(FieldError) as caught:
        normalise_a_number(raw, "person.a_number")
    assert caught.value.field == "person.a_number"
    assert reason in caught.value.reason


@given(nine_digits, st.sampled_from(["", "A", "a", "A-", "A "]), st.sampled_from(["", "-", " "]))
def test_formatting_never_changes_the_number(digits: str, prefix: str, sep: str) -> None:
    spelled = prefix + sep.join((digits[0:3], digits[3:6], digits[6:9]))
    assert normalise_a_number(spelled) == digits


@given(nine_digits)
def test_normalising_is_idempotent_and_display_round_trips(digits: str) -> None:
    assert normalise_a_number(normalise_a_number(digits)) == digits
    assert normalise_a_number(format_a_number(digits)) == digits


@given(st.from_regex(r"[1-9][0-9]{7}", fullmatch=True))
def test_eight_digits_are_left_padded(digits: str) -> None:
    assert normalise_a_number(digits) == "0" + digits


@given(st.text())
def test_any_text_is_normalised_or_rejected_never_crashes(raw: str) -> None:
    try:
        result = normalise_a_number(raw)
    except FieldError as error:
        assert error.reason
    else:
        assert len(result) == 9 and result.isdigit() and result.isascii()
