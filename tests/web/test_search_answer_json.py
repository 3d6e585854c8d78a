"""The people a search finds are encoded by msgspec, not by `JSONResponse`: the bytes must
be the same for every character and every shape an answer takes, so that no client (and
no comparison of a hit with a miss) can tell the two encoders apart. The same holds for
the headers the answer is sent with (`api.Answered`)."""

from typing import Any

import pytest
from fastapi.responses import JSONResponse, Response
from hypothesis import given
from hypothesis import strategies as st

from safevine.i18n import LANGUAGES
from safevine.web.public.api import NOBODY, Answered, _as_json

SPAN = 4096


def _spans() -> list[str]:
    """Every code point but the surrogates, in runs (escaping is character by character)."""
    points = [p for p in range(0x110000) if not 0xD800 <= p <= 0xDFFF]
    return ["".join(map(chr, points[i : i + SPAN])) for i in range(0, len(points), SPAN)]


def test_every_character_is_written_as_json_response_writes_it() -> None:
    for text in _spans():
        answer = {"results": [{"name": text, "facility": {"city": text, "phone": None}}]}
        assert _as_json(answer) == JSONResponse(answer).body


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _values, max_size=6))
def test_any_answer_of_texts_numbers_and_nulls_is_the_same_bytes(result: dict[str, Any]) -> None:
    answer = {"results": [result]}
    assert _as_json(answer) == JSONResponse(answer).body


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb"])
def test_a_lone_surrogate_is_refused_by_both(text: str) -> None:
    answer = {"results": [{"name": text}]}
    with pytest.raises(UnicodeEncodeError):
        JSONResponse(answer)
    with pytest.raises(UnicodeEncodeError):
        _as_json(answer)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_an_answer_has_the_headers_a_response_would_have(language: str) -> None:
    found = _as_json({"results": [{"name": "José Ñúñez 李"}]})
    for body in (NOBODY, found):
        answered = Answered(body, language)
        made = Response(
            body, media_type=JSONResponse.media_type, headers={"Content-Language": language}
        )
        assert (answered.status_code, answered.body) == (made.status_code, made.body)
        assert answered.raw_headers == made.raw_headers
        assert answered.background is None
