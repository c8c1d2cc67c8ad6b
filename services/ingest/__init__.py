"""ingest: reads feeds, sitemaps and listing pages; publishes their articles as ArticleEvents."""
