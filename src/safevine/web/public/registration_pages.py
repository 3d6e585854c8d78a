"""Registration pages: from a search result to a confirmed registration, and the manage page.

Every step is a POST, so no reference, address or code ever lands in a URL; only the
manage link carries its token, since every message must offer it.
"""

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from safevine.i18n import translations
from safevine.languages import LANGUAGES
from safevine.notify import voice_script
from safevine.store.public import registrations
from safevine.store.public.lookup import by_reference
from safevine.web import csrf
from safevine.web.public import registration_flow
from safevine.web.public.pages import form_token_ok, language_of, page, rate_limited
from safevine.web.public.registration_api import describe
from safevine.web.public.registration_form import ALL_EVENTS, EVENT_LABELS, TIME_ZONES
from safevine.web.public.results import present
from safevine.web.public.search_query import Problem
from safevine.web.rendering import Resubmit
from safevine.web.state import AppState, client_address

router = APIRouter(include_in_schema=False)
FORM_FIELDS = (
    "person",
    "channel",
    "address",
    "language",
    "wording",
    "quiet_start",
    "quiet_end",
    "time_zone",
    "allow_voicemail",
)


async def _form(request: Request) -> tuple[dict[str, str], list[str], bool]:
    """The form's fields, its chosen event kinds, and whether its CSRF token holds."""
    form = await request.form()
    values = {f: str(form.get(f) or "") for f in FORM_FIELDS}
    events = [str(e) for e in form.getlist("events")]
    values["lang"] = str(form.get("lang") or "")
    values["_switch"] = str(form.get("_switch") or "")
    return values, events, form_token_ok(request, form.get(csrf.FIELD))


def _form_again(values: dict[str, str], chosen: list[str]) -> Resubmit:
    """The form as filled in, for the same page in another language. Not the PIN (it is
    never sent back to the browser) nor the messages' language, which then follows the
    page's own."""
    fields = [(f, values[f]) for f in FORM_FIELDS if f != "language" and values.get(f)]
    fields += [("events", kind) for kind in chosen]
    return Resubmit("/register", [*fields, ("_switch", "1")])


def _confirm_page(
    request: Request, language: str, pending: str, problems: list[Problem], status: int = 200
) -> Response:
    return page(
        request,
        "register_confirm.html",
        language,
        status=status,
        pending=pending,
        problems=problems,
        switch=Resubmit("/register/confirm", [("registration", pending), ("_switch", "1")]),
    )


def _register_page(
    request: Request,
    language: str,
    values: dict[str, str],
    chosen: list[str],
    problems: list[Problem],
    status: int = 200,
) -> Response:
    gettext = translations(language).gettext
    zones = [(zone, gettext(label)) for zone, label in TIME_ZONES]
    return page(
        request,
        "register.html",
        language,
        status=status,
        form=values,
        events=list(ALL_EVENTS),
        chosen=chosen,
        problems=problems,
        event_labels=EVENT_LABELS,
        time_zones=zones,
        switch=_form_again(values, chosen),
        # Said before a call in such a language is chosen (`voice_script.NO_VOICE`).
        no_voice=[lang for lang in LANGUAGES.values() if not voice_script.has_voice(lang.code)],
    )


@router.post("/register", response_class=HTMLResponse)
async def register_form(request: Request) -> Response:
    """The form, opened from a search result with the person's reference."""
    values, events, valid = await _form(request)
    language = language_of(request, values["lang"])
    if not valid:
        return page(request, "message.html", language, status=400, kind="bad_request")
    values["language"] = values["language"] or language
    # From the language switch, the kinds as chosen; from a result, all of them.
    chosen = events if values["_switch"] else list(ALL_EVENTS)
    return _register_page(request, language, values, chosen, [])


@router.post("/register/start", response_class=HTMLResponse)
async def register_start(request: Request) -> Response:
    values, events, valid = await _form(request)
    language = language_of(request, values["lang"])
    if not valid:
        return page(request, "message.html", language, status=400, kind="bad_request")
    state = AppState.of(request)
    raw = {
        **values,
        # Read here and never kept in `values`, which the page may show again.
        "pin": str((await request.form()).get("pin") or ""),
        "events": events or None,
        "allow_voicemail": values["allow_voicemail"] != "no",
    }
    outcome = await run_in_threadpool(registration_flow.start, state, client_address(request), raw)
    if outcome.retry_after is not None:
        return rate_limited(request, language, outcome.retry_after)
    if outcome.problems:
        return _register_page(request, language, values, events, outcome.problems, status=422)
    assert outcome.started is not None
    return _confirm_page(request, language, outcome.started.pending_token, [])


@router.post("/register/confirm", response_class=HTMLResponse)
async def register_confirm(request: Request) -> Response:
    form = await request.form()
    language = language_of(request, form.get("lang"))
    state = AppState.of(request)
    if not form_token_ok(request, form.get(csrf.FIELD)):
        return page(request, "message.html", language, status=400, kind="bad_request")
    pending = str(form.get("registration") or "")
    switch = str(form.get("_switch") or "")
    if switch == "done":
        # The page of a registration just confirmed, in another language: what it showed.
        return _done_page(
            request, language, str(form.get("manage") or ""), str(form.get("webhook_secret") or "")
        )
    if switch:
        # The language switch: the same page again, nothing confirmed.
        return _confirm_page(request, language, pending, [])
    result = await run_in_threadpool(
        registration_flow.confirm, state, pending, str(form.get("code") or "")
    )
    if isinstance(result, Problem):
        return _confirm_page(request, language, pending, [result], status=422)
    return _done_page(request, language, result.manage_token, result.webhook_secret or "")


def _done_page(request: Request, language: str, manage_token: str, secret: str) -> Response:
    base = AppState.of(request).settings.public_base_url
    return page(
        request,
        "register_done.html",
        language,
        manage_url=f"{base}/m/{manage_token}",
        webhook_secret=secret or None,
        switch=Resubmit(
            "/register/confirm",
            [("_switch", "done"), ("manage", manage_token), ("webhook_secret", secret)],
        ),
    )


@router.get("/m/{token}", response_class=HTMLResponse)
async def manage(token: str, request: Request) -> Response:
    state = AppState.of(request)
    language = language_of(request)

    def read() -> tuple[registrations.RegistrationView | None, list[dict[str, object]]]:
        with state.public_engine.begin() as connection:
            view = registrations.by_manage_token(connection, token, datetime.now(UTC))
            if view is None or view.state != registrations.ACTIVE:
                return view, []
            ref = registrations.person_ref_of(connection, token)
            gettext = translations(language).gettext
            return view, [present(p, language, gettext) for p in by_reference(connection, [ref])]

    view, results = await run_in_threadpool(read)
    if view is None:
        return page(request, "message.html", language, status=404, kind="not_found")
    details = describe(view, translations(language).gettext)
    return page(
        request, "manage.html", language, token=token, registration=details, results=results
    )


@router.post("/m/{token}/end", response_class=HTMLResponse)
async def manage_end(token: str, request: Request) -> Response:
    form = await request.form()
    language = language_of(request, form.get("lang"))
    state = AppState.of(request)
    if not form_token_ok(request, form.get(csrf.FIELD)):
        return page(request, "message.html", language, status=400, kind="bad_request")

    def end() -> bool:
        with state.public_engine.begin() as connection:
            return registrations.end_by_manage_token(connection, token, datetime.now(UTC))

    if not await run_in_threadpool(end):
        return page(request, "message.html", language, status=404, kind="not_found")
    return page(request, "message.html", language, kind="registration_ended")
