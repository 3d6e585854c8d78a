"""Storage: tables, migrations, and the two ways in (`records` for staff and ingest, `public`)."""
