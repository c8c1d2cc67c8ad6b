"""query: the HTTP API (and search page) over the index."""
