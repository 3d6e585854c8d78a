"""Every staff and ingest action, one way in each: the CLI, the staff API and the staff
console call these and nothing below them.

Each action takes the `Actor` who does it and a connection in the caller's transaction,
writes its audit entry in that same transaction (so the entry commits with the change or
not at all), and raises a `FieldError` or a kind of `RefusedError` (`domain.errors`) that each
way in maps to its own answer in one place: HTTP statuses in `web.staff.refusals`, exit
codes in the CLI.
"""
