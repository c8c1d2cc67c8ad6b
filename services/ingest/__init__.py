"""ingest: pulls articles from feeds and publishes ArticleEvents."""
