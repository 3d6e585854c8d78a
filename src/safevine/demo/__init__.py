"""The demo: a database with real facilities and a synthetic population to search and follow."""
