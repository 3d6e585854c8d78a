"""The public JSON API: exact search, answered the same way whether or not anyone matches."""

from collections.abc import Mapping
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from safevine.i18n import negotiate, translations
from safevine.web.state import AppState, client_address

PREFIX = "/api/v1"
PATH = f"{PREFIX}/search"
router = APIRouter(prefix=PREFIX, tags=["search"])

# The most characters of any field of a search (the search itself allows fewer).
FIELD_MAX = 200
_Text = Field(default=None, max_length=FIELD_MAX)


class SearchRequest(BaseModel):
    """A-number + country of birth, or given name + family name + country of birth
    (date of birth optional). Matching is exact, after case and accents are folded."""

    model_config = ConfigDict(extra="forbid")
    a_number: str | None = Field(default=None, max_length=FIELD_MAX, examples=["A-012-345-678"])
    country_of_birth: str | None = Field(
        default=None, max_length=FIELD_MAX, examples=["MX", "México"]
    )
    given_name: str | None = _Text
    family_name: str | None = _Text
    date_of_birth: str | None = Field(default=None, max_length=FIELD_MAX, examples=["1990-05-31"])


class Facility(BaseModel):
    name: str | None
    address: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    phone: str | None


class Delay(BaseModel):
    state: str = Field(description="late, down or paused")
    state_text: str
    last_received: str | None
    last_received_text: str | None
    text: str


class SearchResult(BaseModel):
    reference: str = Field(description="Opaque reference, for registering to be notified.")
    name: str
    given_name: str | None
    family_name: str | None
    country_of_birth: str | None
    country_of_birth_name: str
    custody_status: str
    custody_status_text: str
    status_since: str
    status_since_text: str
    facility: Facility
    last_updated: str
    last_updated_text: str
    information_delayed: Delay | None = Field(
        description="Set when this facility's information may be out of date."
    )


class SearchResponse(BaseModel):
    results: list[SearchResult]


class FieldMessage(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    errors: list[FieldMessage]


class LimitedResponse(BaseModel):
    error: str


# `lang` is read from the query string and described for the schema by hand: as a FastAPI
# parameter it was validated on every request, which cost about a fifth of the endpoint.
# Any string is accepted, as `lang: str | None = None` accepted it; the last one counts.
_LANG: dict[str, Any] = {
    "in": "query",
    "name": "lang",
    "required": False,
    "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Lang"},
}
# The answer to every search that finds no one (a miss, a protected or unscreened person),
# encoded once.
NOBODY = bytes(JSONResponse({"results": []}).body)
# The people found as JSON, byte for byte as `JSONResponse` renders them (compact, UTF-8,
# the same escapes for every character: tests/web/test_search_answer_json.py), in C.
_as_json = msgspec.json.Encoder().encode
_JSON_TYPE = str(JSONResponse.media_type).encode("latin-1")


class Answered(Response):
    """A search's 200 answer: `Response(body, media_type=JSONResponse.media_type,
    headers={"Content-Language": language})`, header for header, without Starlette
    working its headers out of a mapping on every search."""

    media_type = JSONResponse.media_type

    def __init__(self, body: bytes, language: str) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-language", language.encode("latin-1")),
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", _JSON_TYPE),
        ]


@router.post(
    "/search",
    response_model=SearchResponse,
    responses={422: {"model": ErrorResponse}, 429: {"model": LimitedResponse}},
    summary="Find a person in custody by exact identifiers",
    openapi_extra={"parameters": [_LANG]},
)
async def search(body: SearchRequest, request: Request) -> Response:
    return await answer(
        AppState.of(request),
        client_address(request),
        request.query_params.get("lang"),
        request.headers.get("accept-language"),
        body.model_dump(),
    )


async def answer(
    state: AppState,
    client: str,
    lang: str | None,
    accept_language: str | None,
    raw: Mapping[str, object],
) -> Response:
    """The answer to one search, from the validated body (`SearchRequest.model_dump()`)."""
    language = negotiate(lang, accept_language)
    gettext = translations(language).gettext
    outcome = await state.searcher.search(client, raw)
    if outcome.retry_after is not None:
        message = gettext("Too many searches. Please wait and try again.")
        return JSONResponse(
            {"error": message},
            status_code=429,
            headers={"Content-Language": language, "Retry-After": str(outcome.retry_after)},
        )
    if outcome.problems:
        errors = [{"field": p.field, "message": p.text(gettext)} for p in outcome.problems]
        return JSONResponse(
            {"errors": errors}, status_code=422, headers={"Content-Language": language}
        )
    if not outcome.people:
        return Answered(NOBODY, language)
    return Answered(_as_json({"results": outcome.presented(language, gettext)}), language)
