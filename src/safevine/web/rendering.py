"""Server-rendered pages: Jinja2 templates with autoescaping and per-request translations."""

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from safevine.i18n import LANGUAGES, translations


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
    """Render in `language`; `_` in templates translates, `other_language` is the switch."""
    catalog = translations(language)
    return (
        environment()
        .get_template(template)
        .render(
            _=catalog.gettext,
            ngettext=catalog.ngettext,
            language=language,
            other_language=next(code for code in LANGUAGES if code != language),
            **context,
        )
    )
