"""Text checks refuse exactly the C0 and C1 controls, DEL and lone surrogates, whatever
else a value holds (a printable value takes a quicker path than one that is not)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safevine.domain.errors import FieldError
from safevine.domain.value_ranges import check_text, clean_text

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SURROGATE = re.compile(r"[\ud800-\udfff]")
# Not printable to Python, yet allowed: spaces of other kinds, joiners, marks, private use.
ALLOWED_ODD = ["\xa0", "\u200d", "\u2028", "\u202e", "\ufeff", "\ue000", "\u3000", "\U000e0001"]


def _expected(value: str) -> str | None:
    """The error `check_text` must give, by its definition; None when it must pass."""
    if CONTROL.search(value):
        return "contains control characters"
    if SURROGATE.search(value):
        return "contains characters that are not valid Unicode"
    return None


TEXT = st.text(
    st.one_of(
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from(["\x00", "\t", "\x7f", "\x85", "\x9f", "\ud800", "\udfff", *ALLOWED_ODD]),
    ),
    max_size=30,
)


@given(value=TEXT)
def test_check_text_refuses_exactly_controls_and_surrogates(value: str) -> None:
    wanted = _expected(value)
    assert clean_text(value) == (wanted is None)
    if wanted is None:
        assert check_text(value, "f", limit=100) is value
    else:
        with pytest.raises(FieldError, match=wanted):
            check_text(value, "f", limit=100)


def test_odd_but_allowed_characters_pass() -> None:
    for ch in ALLOWED_ODD:
        assert not ch.isprintable()  # the slower path, which must let them through
        assert check_text(f"a{ch}b", "f") == f"a{ch}b"


def test_length_is_checked_first() -> None:
    with pytest.raises(FieldError, match="longer than 3"):
        check_text("a\x00bc", "f", limit=3)
