"""What a public search may ask: two exact identifiers, validated with messages for people.

A-number + country of birth, or given name + family name + country of birth (date of
birth optional). Messages never repeat what was typed, and are translated by the caller.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from safevine.domain.a_number import normalise_a_number
from safevine.domain.country import resolve_country
from safevine.domain.errors import FieldError
from safevine.domain.names import clean_name, fold_name
from safevine.i18n import N_

FIELDS = ("a_number", "country_of_birth", "given_name", "family_name", "date_of_birth")
MAX_LENGTH = 100
# Wildcards would never match (matching is exact), so say so instead of finding nothing.
_WILDCARDS = frozenset("*%?_")


@dataclass(frozen=True)
class SearchQuery:
    country: str
    a_number: str | None = None
    given_key: str | None = None
    family_key: str | None = None
    date_of_birth: date | None = None

    @property
    def canonical(self) -> str:
        """The identifiers searched, as one string for the per-identifier rate limit.
        An A-number alone names one person: with the country in the key, trying every
        country would give as many tries again."""
        if self.a_number:
            return f"a:{self.a_number}"
        return f"n:{self.given_key}:{self.family_key}:{self.country}"


# The fields in the order the page shows them: problems are listed in this order.
PAGE_ORDER = ("a_number", "given_name", "family_name", "date_of_birth", "country_of_birth")
LABELS = {
    "a_number": N_("A-number"),
    "given_name": N_("Given name"),
    "family_name": N_("Family name"),
    "date_of_birth": N_("Date of birth"),
    "country_of_birth": N_("Country of birth"),
}


@dataclass(frozen=True)
class Problem:
    field: str
    message: str  # an English msgid, translated for display
    # Its placeholders: a str is a msgid (translated too), an int a number.
    values: tuple[tuple[str, str | int], ...] = ()

    def text(self, gettext: Callable[[str], str]) -> str:
        """The message in the reader's language, placeholders filled."""
        said = gettext(self.message)
        if not self.values:
            return said
        return said % {k: gettext(v) if isinstance(v, str) else v for k, v in self.values}


def in_page_order(problems: list[Problem], order: tuple[str, ...] = PAGE_ORDER) -> list[Problem]:
    """`problems` in the order their fields appear on the page (a summary lists them so)."""
    return sorted(problems, key=lambda p: order.index(p.field) if p.field in order else len(order))


def _name(value: str, field: str) -> str | Problem:
    if not _WILDCARDS.isdisjoint(value):
        return Problem(
            field, N_("Enter the full name. Partial names and wildcards are not searched.")
        )
    try:
        return fold_name(clean_name(value, field))
    except FieldError:
        return Problem(field, N_("Enter the name using letters."))


def parse_query(raw: Mapping[str, object]) -> SearchQuery | list[Problem]:
    """A SearchQuery, or every problem with the input (one per field at most)."""
    values = {f: (str(raw.get(f) or "")).strip() for f in FIELDS}
    problems: list[Problem] = []
    for field, value in values.items():
        if len(value) > MAX_LENGTH:
            limit = (("field", LABELS[field]), ("limit", MAX_LENGTH))
            problems.append(Problem(field, N_("%(field)s: at most %(limit)d characters."), limit))
    if problems:
        return in_page_order(problems)

    country: str | None = None
    if not values["country_of_birth"]:
        problems.append(Problem("country_of_birth", N_("Enter the country of birth.")))
    else:
        try:
            country = resolve_country(values["country_of_birth"])
        except FieldError:
            problems.append(
                Problem(
                    "country_of_birth", N_("Enter a country name, or a code such as MX or MEX.")
                )
            )

    if values["a_number"]:
        if values["given_name"] or values["family_name"] or values["date_of_birth"]:
            problems.append(
                Problem(
                    "a_number",
                    N_(
                        "Search by A-number or by name, not both. "
                        "Clear the name fields or the A-number."
                    ),
                )
            )
        try:
            a_number = normalise_a_number(values["a_number"])
        except FieldError:
            problems.append(
                Problem(
                    "a_number", N_("Enter an A-number with 8 or 9 digits, such as A-012-345-678.")
                )
            )
        if problems or country is None:
            return in_page_order(problems)
        return SearchQuery(country=country, a_number=a_number)

    names: dict[str, str] = {}
    for field, missing in (
        ("given_name", N_("Enter the given name, or search by A-number.")),
        ("family_name", N_("Enter the family name, or search by A-number.")),
    ):
        if not values[field]:
            problems.append(Problem(field, missing))
            continue
        folded = _name(values[field], field)
        if isinstance(folded, Problem):
            problems.append(folded)
        else:
            names[field] = folded
    born: date | None = None
    if values["date_of_birth"]:
        try:
            born = date.fromisoformat(values["date_of_birth"])
        except ValueError:
            problems.append(
                Problem(
                    "date_of_birth",
                    N_("Enter the date of birth as year-month-day, such as 1990-05-31."),
                )
            )
    if problems or country is None:
        return in_page_order(problems)
    return SearchQuery(
        country=country,
        given_key=names["given_name"],
        family_key=names["family_name"],
        date_of_birth=born,
    )
