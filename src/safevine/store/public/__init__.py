"""The public projection: the only query path for public web, exports and notifications.

Searches go through the searches of migrations 0010 and 0011 (functions on PostgreSQL,
views on SQLite),
which do the same work whether the person searched for is hidden or does not exist;
references and counts through the `public_persons` view. Both apply the publication rule
inside the database, so a non-public person is simply not there.
"""
