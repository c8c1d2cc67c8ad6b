"""indexer: consumes the article and quote streams into Elasticsearch."""
