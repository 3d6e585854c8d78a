"""The decoy: a person who is never public, examined by a public search for a key after
every real one.

A search for nobody examines the person whose key comes next (migration 0011), so that it
does the same work as a search for a hidden person; past the last real key, that is the
decoy. Migration 0010 creates it (id 0, with a name, an event and a custody status,
protected). It is not a person: whatever lists or counts people, names or events leaves
it out, and no search, feed or staff command can name it (its A-number has letters, its
name keys hold U+10FFFF, its event id a control character).
"""

from sqlalchemy import ColumnElement

from safevine.store.schema import custody_events, person_names, persons

DECOY_PERSON_ID = 0
# Its A-number and name keys sort after every real one (see migration 0010).
DECOY_A_NUMBER = "ZZZZZZZZZ"
DECOY_NAME_KEYS = ("\U0010ffff decoy", "\U0010ffff\U0010ffff")


def real_persons() -> ColumnElement[bool]:
    return persons.c.id != DECOY_PERSON_ID


def real_names() -> ColumnElement[bool]:
    return person_names.c.person_id != DECOY_PERSON_ID


def real_events() -> ColumnElement[bool]:
    return custody_events.c.person_id != DECOY_PERSON_ID
