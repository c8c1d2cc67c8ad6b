"""The four Caravan services; each folder is one deployable process."""
