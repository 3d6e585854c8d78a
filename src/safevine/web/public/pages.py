"""The search page, the quick-exit endpoint and the safety page. HTML, no JavaScript needed."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from safevine.i18n import negotiate, translations
from safevine.web import csrf
from safevine.web.public.feed_delays import describe_delay
from safevine.web.public.search_query import FIELDS
from safevine.web.rendering import Resubmit, render
from safevine.web.state import AppState, client_address

router = APIRouter(include_in_schema=False)


def page(
    request: Request, template: str, language: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page with the CSRF token every form carries; the cookie is set only when missing."""
    state = AppState.of(request)
    token = request.cookies.get(csrf.COOKIE)
    fresh = not csrf.is_valid(state.settings.secret_key, token)
    if fresh or token is None:
        token = csrf.issue(state.settings.secret_key)
    context.setdefault("expired", False)
    problems = context.get("problems") or []
    errors: dict[str, str] = {}
    gettext = translations(language).gettext
    for problem in problems:
        # Translated here (with its placeholders); `_` in the template leaves it as it is.
        errors.setdefault(problem.field, problem.text(gettext))
    html = render(
        template,
        language,
        csrf_token=token,
        csrf_field=csrf.FIELD,
        path=request.url.path,
        # A page reached by a form and offering no way to post it again switches to the
        # search page (a GET of its own address would answer 405).
        switch_path=request.url.path if request.method == "GET" else "/",
        errors=errors,
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers={"Content-Language": language})
    if fresh:
        response.headers.append(
            "Set-Cookie", csrf.cookie_header(token, request.url.scheme == "https")
        )
    return response


def rate_limited(request: Request, language: str, retry_after: int) -> HTMLResponse:
    """The friendly 429 page, with Retry-After."""
    response = page(
        request,
        "message.html",
        language,
        status=429,
        kind="rate_limited",
        retry_minutes=max(1, -(-retry_after // 60)),
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def form_token_ok(request: Request, submitted: object) -> bool:
    """The form's CSRF token is ours, unexpired, and the one in the cookie."""
    token = str(submitted or "")
    secret = AppState.of(request).settings.secret_key
    return csrf.is_valid(secret, token) and token == request.cookies.get(csrf.COOKIE)


def language_of(request: Request, explicit: object = None) -> str:
    chosen = explicit if isinstance(explicit, str) else request.query_params.get("lang")
    return negotiate(chosen, request.headers.get("accept-language"))


@router.get("/", response_class=HTMLResponse)
def search_form(request: Request) -> Response:
    return page(request, "search.html", language_of(request), form={}, problems=[], results=None)


@router.post("/", response_class=HTMLResponse)
async def search_submit(request: Request) -> Response:
    form = await request.form()
    language = language_of(request, form.get("lang"))
    state = AppState.of(request)
    values = {f: str(form.get(f) or "") for f in FIELDS}
    if not form_token_ok(request, form.get(csrf.FIELD)):
        return page(
            request,
            "search.html",
            language,
            status=400,
            form=values,
            problems=[],
            results=None,
            expired=True,
        )
    outcome = await state.searcher.search(client_address(request), values)
    if outcome.retry_after is not None:
        return rate_limited(request, language, outcome.retry_after)
    if outcome.problems:
        return page(
            request,
            "search.html",
            language,
            status=422,
            form=values,
            problems=outcome.problems,
            results=None,
            switch=Resubmit("/", list(values.items())),
        )
    gettext = translations(language).gettext
    results = outcome.presented(language, gettext)
    return page(
        request,
        "search.html",
        language,
        form=values,
        problems=[],
        results=results,
        switch=Resubmit("/", list(values.items())),
    )


@router.get("/favicon.ico", include_in_schema=False)
def no_icon() -> Response:
    """No icon, on purpose, and no 404 each time a browser asks: browsers keep a site's
    icon in a store of their own, a trace of the visit that clearing history can miss."""
    return Response(status_code=204)


@router.get("/exit")
def quick_exit(request: Request) -> Response:
    """Leave for a neutral site, asking the browser to drop what it kept of this one."""
    response = RedirectResponse(AppState.of(request).settings.exit_url, status_code=303)
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response


@router.get("/delays", response_class=HTMLResponse)
def delays_page(request: Request) -> Response:
    """Facilities whose information is delayed: no one is named, only facilities."""
    language = language_of(request)
    gettext = translations(language).gettext
    listed = [
        {
            "name": delay.facility_name,
            "city": delay.facility_city,
            "region": delay.facility_state,
            "phone": delay.facility_phone,
            **describe_delay(delay, language, gettext),
        }
        for delay in AppState.of(request).searcher.board.all()
    ]
    return page(request, "delays.html", language, delays=listed)


@router.get("/browse-safely", response_class=HTMLResponse)
def browse_safely(request: Request) -> Response:
    return page(request, "browse_safely.html", language_of(request))
