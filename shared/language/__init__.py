"""The region's languages for search: scripts, word forms and place names, in plain Python.

Elasticsearch's minimal distribution has no language analysers, and no
distribution folds Uzbek and Kazakh between their Latin and Cyrillic alphabets,
so the indexer and the query service analyse text here, alike on both sides.
"""
