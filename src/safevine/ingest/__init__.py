"""Feeds in: parsers and validators per format, the roster diff, and the reject log."""
