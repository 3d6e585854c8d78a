"""Server-rendered pages: Jinja2 templates with autoescaping and per-request translations."""

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from safevine.i18n import translations
from safevine.languages import LANGUAGES, direction


@dataclass(frozen=True)
class Resubmit:
    """The language switch of a page reached by a form: the form to post again (to
    `action`, with `fields`) for the same page in another language."""

    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)


# What must read left to right inside right-to-left text: A-numbers, phone numbers, ISO
# dates and codes (in Arabic "A-012-345-678" would otherwise show as "012-345-678-A").
_LEFT_TO_RIGHT = re.compile(
    r"A-?\d{3}-?\d{3}-?\d{3}|\d{4}-\d{2}-\d{2}|\+?\d[\d ()-]{5,}\d|\b[A-Z]{2,3}\b"
)


def left_to_right(text: object) -> Markup:
    """`text`, escaped, with each A-number, phone number, ISO date and code isolated as
    left-to-right (`<span dir="ltr">`), so it keeps its order inside right-to-left text."""
    escaped = str(escape(str(text)))
    isolated = _LEFT_TO_RIGHT.sub(lambda m: f'<span dir="ltr">{m.group(0)}</span>', escaped)
    return Markup(isolated)  # noqa: S704 - escaped first, and the pattern matches no markup


_LINK = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


def with_links(text: object) -> Markup:
    """`text`, escaped, with each web address made a link (the demo inbox's messages)."""
    raw, parts, at = str(text), [], 0
    for found in _LINK.finditer(raw):
        address = escape(found.group(0))
        parts += [escape(raw[at : found.start()]), f'<a href="{address}" dir="ltr">{address}</a>']
        at = found.end()
    parts.append(escape(raw[at:]))
    return Markup("".join(str(part) for part in parts))  # noqa: S704 - every piece escaped


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("safevine.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ltr"] = left_to_right
    env.filters["links"] = with_links
    return env


def render(template: str, language: str, **context: Any) -> str:
    """Render in `language`; `_` in templates translates, `languages` are the switch's
    choices (each in its own name), `direction` is `ltr` or `rtl`."""
    catalog = translations(language)
    context.setdefault("switch", None)
    context.setdefault("switch_path", context.get("path", "/"))
    return (
        environment()
        .get_template(template)
        .render(
            _=catalog.gettext,
            ngettext=catalog.ngettext,
            language=language,
            languages=list(LANGUAGES.values()),
            this_language=LANGUAGES[language],
            direction=direction(language),
            **context,
        )
    )
