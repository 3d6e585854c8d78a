"""Server-rendered pages: Jinja2 templates with autoescaping and per-request translations."""

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from safevine.i18n import translations
from safevine.languages import LANGUAGES, direction


@dataclass(frozen=True)
class Resubmit:
    """The language switch of a page reached by a form: the form to post again (to
    `action`, with `fields`) for the same page in another language."""

    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("safevine.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


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
