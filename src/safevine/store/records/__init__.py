"""Everything about every person: for staff and ingest only, never for a public surface.

Each kind of write has one function here (record events, apply a roster, protect, clear),
and it makes every side effect of that write in the caller's transaction.
"""
