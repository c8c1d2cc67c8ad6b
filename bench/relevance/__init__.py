"""`make bench-relevance`: Caravan's search against a plain baseline on judged queries."""
