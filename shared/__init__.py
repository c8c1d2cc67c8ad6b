"""Common code of the Caravan services: event contracts, settings, logging, clients."""
