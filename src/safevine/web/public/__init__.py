"""Public surfaces: search pages and API. They read only `store.public`."""
