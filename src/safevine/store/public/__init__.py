"""The public projection: the only query path for public web, exports and notifications.

It reads the `public_persons` and `public_person_names` views, which apply the
publication rule inside the database, so a non-public person is simply not there.
"""
