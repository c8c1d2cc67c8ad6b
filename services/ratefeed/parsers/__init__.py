"""Provider document parsers, one per format: a document's bytes in, its OfficialRates out.

Pure. parsing.py holds what they share: strict numbers, currency codes and XML.
"""
