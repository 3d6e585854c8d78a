"""The typed reader of the usual JSON Lines event record (`events_jsonl_typed`) against the
reference reader (`events_jsonl.read_jsonl_record`): on any line, it reads exactly what the
reference reads or leaves the line to it, and it does read the usual lines."""

import json
from datetime import timedelta
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

from safevine.domain.event_kinds import EventKind
from safevine.ingest.events_jsonl import parse_jsonl_record, read_jsonl_record
from safevine.ingest.events_jsonl_typed import typed_jsonl_record
from tests.builders import NOW
from tests.ingest.feed_properties import (
    BAD_A_NUMBERS,
    BAD_BIRTHS,
    BAD_COUNTRIES,
    BAD_MOMENTS,
    BAD_NAME_PARTS,
    BAD_TEXT,
    GOOD_BIRTHS,
    GOOD_COUNTRIES,
    GOOD_NAMES,
    LONG_TEXT,
    ODD_MOMENTS,
    ODD_TEXT,
    fuzz_settings,
    moment,
)

# Whitespace `str.strip` strips, printable or not, and characters `check_text` keeps
# though they are not printable.
PADS = [" ", "  ", "\t", "\u00a0", "\u3000", "\u2028", "\u200b", "\u00ad"]
# A value that is not quite a good one, by what it is made from: its good value padded
# (mostly with a plain space, the usual mistake), in capitals, empty, of another type, or
# text no field keeps.
ODD_MAKES = ["pad", "pad", "pad", "pad_after", "pad_after", "pad_after", "upper", "empty",
             "type", "bad_text", "bad_text"]  # fmt: skip
# Values of another type than text, which the reference reader takes or refuses by type.
OTHER_TYPES: list[Any] = [
    0,
    7,
    -1,
    2**31,
    2**64,
    10**30,
    1.0,
    1.5,
    True,
    False,
    [],
    {},
    ["x"],
    {"a": 1},
]


@st.composite
def _odd_value(draw: st.DrawFn, text_values: list[str]) -> Any:
    make = draw(st.sampled_from(ODD_MAKES))
    value = draw(st.sampled_from(text_values))
    pad = draw(st.sampled_from([" ", " ", *PADS]))
    if make == "pad":
        return pad + value
    if make == "pad_after":
        return value + pad
    if make == "upper":
        return value.upper()
    if make == "empty":
        return draw(st.sampled_from([None, "", "   "]))
    if make == "type":
        return draw(st.sampled_from(OTHER_TYPES))
    return draw(st.sampled_from(BAD_TEXT + ODD_TEXT + LONG_TEXT[:1]))


def _odd(text_values: list[str]) -> st.SearchStrategy[Any]:
    return _odd_value(text_values)


def _moments() -> list[str]:
    good = [moment(NOW - timedelta(hours=h), m) for h in (1, 30, 24 * 300) for m in (0, -300, 330)]
    return [*good, (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"), *ODD_MOMENTS]


KINDS = [k.value for k in EventKind]
A_NUMBERS = ["012345678", "A012345678", "A-012-345-678", "a 012 345 678", "12345678",
             "０１２３４５６７８"]  # fmt: skip
CODES = ["F0001", "f0001", "x" * 40]
BIRTHS = [b for b in GOOD_BIRTHS if b]
COUNTRIES = [c for c, _ in GOOD_COUNTRIES if c]
NAME_PARTS = [v for pair in GOOD_NAMES for v in pair if v is not None]
# Each kind's good details (any kind takes none, or a key it does not know left empty).
NO_DETAILS: list[Any] = [None, {}, {"unknown": None}, {"unknown": ""}]
GOOD_DETAILS: dict[str, list[Any]] = {
    "released": [{"reason": "bond"}, {"reason": "BOND"}, {"reason": None}],
    "removed": [{"destination_country": "Mexico"}, {"destination_country": "MX"}],
    "hearing_scheduled": [
        {"court": "Immigration Court", "hearing_at": moment(NOW + timedelta(days=30), -300)}
    ],
    "transferred": [{"from_facility_code": "f0002"}, {"from_facility_code": ""}],
}
BAD_DETAILS: list[Any] = [
    "",
    [],
    "x",
    {"reason": "escaped"},
    {"reason": 5},
    {"destination_country": "Narnia"},
    {"court": "Immigration Court", "hearing_at": "soon"},
    {"court": "", "hearing_at": moment(NOW + timedelta(days=30), 0)},
    {"court": "Immigration Court", "hearing_at": moment(NOW + timedelta(days=4000), 0)},
    {"from_facility_code": 12},
    {"from_facility_code": "x" * 41},
    {"unknown": "x"},
    {"reason": "bond", "court": "x"},
]
ALIASES: list[Any] = [[], None, "", [{"given_name": "Ana", "family_name": "Ruiz"}],
                      [{"given_name": "Zoë", "family_name": "O\u2019Brien"},
                       {"given_name": "Ana", "family_name": "Ruiz"}]]  # fmt: skip
BAD_ALIASES: list[Any] = [
    "x",
    [1],
    [{"given_name": "Ana"}],
    [{"given_name": " Ana", "family_name": "Ruiz"}],
    [{"given_name": "Ana", "family_name": "Ruiz", "note": "x"}],
    [{"given_name": "A\x00na", "family_name": "Ruiz"}],
    [{"given_name": "Ana", "family_name": "123"}],
    [{"given_name": 5, "family_name": "Ruiz"}],
]
PROTECTIONS: list[Any] = ["", "protected", "cleared", " Protected ", "maybe", 1, True]
SEQUENCES: list[Any] = [0, 3, 2**31 - 1]
BAD_SEQUENCES: list[Any] = [None, "", "12", -1, 2**31, 1.0, True, 10**5000, "x"]

BAD_MOMENT_TEXTS = [m for m in BAD_MOMENTS if isinstance(m, str)][:20]


def _field(good: list[Any], bad: list[Any], *odd: str) -> tuple[Any, Any]:
    """(its good values, what spoils it: its bad values, and its good text made odd)."""
    spoil = st.sampled_from(bad) if not odd else st.one_of(_odd(list(odd)), st.sampled_from(bad))
    return st.sampled_from(good), spoil


# Per field: where it sits, its good values, and what spoils it.
FIELDS: dict[str, tuple[tuple[str, ...], Any, Any]] = {
    "event_id": ((), *_field(["ev-1", "é" * 200, "x" * 200, "Ω-7"], ["x" * 201], "ev-1")),
    "kind": ((), *_field(KINDS, ["paroled", "book ed"], *KINDS)),
    "occurred_at": ((), *_field(_moments(), BAD_MOMENT_TEXTS, *_moments())),
    "facility_code": ((), *_field(CODES, ["x" * 41], *CODES)),
    "sequence": ((), *_field(SEQUENCES, BAD_SEQUENCES)),
    "details": ((), st.nothing(), st.sampled_from(BAD_DETAILS)),  # good: by kind
    "source": ((), st.just("x"), st.just(None)),
    "a_number": (("person",), *_field(A_NUMBERS, BAD_A_NUMBERS, *A_NUMBERS)),
    "given_name": (("person",), *_field(NAME_PARTS, BAD_NAME_PARTS, *NAME_PARTS)),
    "family_name": (("person",), *_field(NAME_PARTS, BAD_NAME_PARTS, *NAME_PARTS)),
    "aliases": (("person",), *_field(ALIASES, BAD_ALIASES)),
    "date_of_birth": (("person",), *_field(BIRTHS, BAD_BIRTHS, *BIRTHS)),
    "country_of_birth": (("person",), *_field(COUNTRIES, BAD_COUNTRIES, *COUNTRIES)),
    "protection": (("person",), st.none(), st.sampled_from(PROTECTIONS)),
    "nickname": (("person",), st.just("Ana"), st.just(None)),
}
REQUIRED = {"event_id", "kind", "occurred_at", "facility_code", "a_number"}


def _details(kind: Any) -> st.SearchStrategy[Any]:
    own = GOOD_DETAILS.get(kind, [])
    needed = kind in ("removed", "hearing_scheduled")
    return st.sampled_from(own if needed else own + own + NO_DETAILS)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed record, often with one or two of its fields spoiled, left out, or
    given when they are not usually (a key the format does not name, a protection)."""
    person: dict[str, Any] = {}
    record: dict[str, Any] = {"person": person}
    spoiled = draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=3, unique=True))
    for name, (where, good, bad) in FIELDS.items():
        home = person if where else record
        optional = name not in REQUIRED and name not in ("given_name", "family_name")
        if name in spoiled:
            if draw(st.integers(0, 3)) or name in ("source", "nickname", "protection"):
                home[name] = draw(bad)
            continue  # left out
        if name in ("source", "nickname", "protection") or (
            optional and not draw(st.integers(0, 2))
        ):
            continue
        home[name] = draw(good) if name != "details" else draw(_details(record.get("kind")))
    if "given_name" in person and "family_name" not in person:
        person["family_name"] = "Ruiz"
    if draw(st.integers(0, 20)) == 20:
        record["person"] = draw(st.sampled_from([None, "x", [person]]))
    return record


@st.composite
def lines(draw: st.DrawFn) -> str:
    """A record written out as writers write JSON, sometimes damaged after."""
    record = draw(records())
    separators = draw(st.sampled_from([None, (",", ":"), (" , ", " : "), (",\t", ":\t")]))
    try:
        text = json.dumps(record, ensure_ascii=draw(st.booleans()), separators=separators)
    except ValueError:  # an integer too long to write
        text = json.dumps({**record, "sequence": 1})
    damage = draw(st.sampled_from(["", "", "", "space", "duplicate", "insert", "cut"]))
    if damage == "space":
        text = " " + text + " \r"
    elif damage == "duplicate":
        text = '{"kind": "died", ' + text[1:]
    elif damage in ("insert", "cut"):
        at = draw(st.integers(0, len(text)))
        piece = draw(st.sampled_from([" ", "\\", '"', "\x00", "{", "}", ",", "NaN", "\u00a0"]))
        text = text[:at] + piece + text[at:] if damage == "insert" else text[:at]
    return text


@fuzz_settings(2000)
@given(lines())
def test_reads_what_the_reference_reads_or_leaves_the_line_to_it(line: str) -> None:
    note(repr(line))
    typed = typed_jsonl_record(9, line)
    reference = read_jsonl_record(9, line)
    if typed is not None:
        assert typed.value is not None, "the typed reader never writes a reject"
        assert typed == reference
        # Equal instants can differ in their offset: the text shows it.
        assert repr(typed) == repr(reference)
    assert parse_jsonl_record((9, line)) == reference


USUAL: list[dict[str, Any]] = [
    {"event_id": "ev-00000001", "occurred_at": moment(NOW - timedelta(hours=3), 0),
     "kind": "booked", "facility_code": "F0293",
     "person": {"a_number": "200287962", "given_name": "Manuel",
                "family_name": "Méndez Villalobos", "date_of_birth": "1955-07-07",
                "country_of_birth": "MX"}},
    {"event_id": "ev-2", "occurred_at": moment(NOW - timedelta(hours=2), -300),
     "kind": "transferred", "facility_code": "F0001", "sequence": 4,
     "details": {"from_facility_code": "F0293"},
     "person": {"a_number": "A-200-287-962", "given_name": "Zoë", "family_name": "Ñúñez",
                "aliases": [{"given_name": "Zoe", "family_name": "Nunez"}]}},
    {"event_id": "ev-3", "occurred_at": moment(NOW - timedelta(hours=1), 330),
     "kind": "hearing_scheduled", "facility_code": "F0001",
     "details": {"court": "Immigration Court",
                 "hearing_at": moment(NOW + timedelta(days=40), -300)},
     "person": {"a_number": "200287962", "protection": None}},
    {"event_id": "ev-4", "occurred_at": moment(NOW - timedelta(minutes=30), 0),
     "kind": "released", "details": {"reason": "bond"}, "person": {"a_number": "12345678"}},
    {"event_id": "ev-5", "occurred_at": moment(NOW - timedelta(minutes=20), 0),
     "kind": "removed", "details": {"destination_country": "México"},
     "person": {"a_number": "200287962", "given_name": "محمد", "family_name": "عبد الله"}},
]  # fmt: skip


def test_the_usual_lines_are_read_by_their_types_escaped_or_not() -> None:
    for record in USUAL:
        for ascii_only in (False, True):
            line = json.dumps(record, ensure_ascii=ascii_only)
            typed = typed_jsonl_record(3, line)
            assert typed is not None, line
            assert typed == read_jsonl_record(3, line)
            assert typed.value is not None and typed.value.event_id == record["event_id"]


TEXT_FIELDS = [("event_id",), ("kind",), ("occurred_at",), ("facility_code",),
               ("person", "a_number"), ("person", "given_name"), ("person", "family_name"),
               ("person", "date_of_birth"), ("person", "country_of_birth")]  # fmt: skip


def _spoiled(record: dict[str, Any], path: tuple[str, ...], make: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(record))
    home = copy
    for key in path[:-1]:
        home = home[key]
    home[path[-1]] = make(home[path[-1]])
    return copy


def test_every_text_value_padded_or_holding_what_no_field_keeps_reads_as_the_reference_reads() -> (
    None
):
    """Each text field of a usual line, with each kind of whitespace before or after it,
    or holding text a field refuses, in both escaped and plain JSON: read as the reference
    reads it, or left to it."""
    makes = [lambda v, p=p: p + v for p in PADS] + [lambda v, p=p: v + p for p in PADS]
    makes += [lambda v, bad=bad: v[:1] + bad + v[1:] for bad in [*BAD_TEXT, "\t", "\u00a0"]]
    read = 0
    for path in TEXT_FIELDS:
        for make in makes:
            record = _spoiled(USUAL[0], path, make)
            for ascii_only in (False, True):
                line = json.dumps(record, ensure_ascii=ascii_only)
                typed = typed_jsonl_record(1, line)
                reference = read_jsonl_record(1, line)
                if typed is not None:
                    read += 1
                    assert repr(typed) == repr(reference), (path, line)
    # Names, A-numbers and countries are read through functions that strip them too.
    assert read > 0
