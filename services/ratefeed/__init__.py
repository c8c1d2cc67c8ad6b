"""ratefeed: polls official exchange-rate sources and publishes QuoteEvents."""
