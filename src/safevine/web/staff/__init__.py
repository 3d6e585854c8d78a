"""The staff API: authenticated, scoped, audited. Never linked from public pages."""
