"""The web app: public pages and API (`public/`), templates, and first-party static files."""
