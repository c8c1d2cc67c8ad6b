"""The garbage collector as a long-running service wants it."""

from __future__ import annotations

import gc

# CPython collects its youngest generation every 700 allocations of container objects
# by default. A service makes and drops thousands per message or request (a batch's
# chunk lists, a search's parsed answer), nearly all freed by reference counting, so
# those collections find little and cost the indexer about a tenth of its CPU
# (bench/README.md, "Indexer throughput"). Older generations follow at the default
# multiples of this one.
YOUNG_GENERATION_THRESHOLD = 20_000


def settle_after_startup() -> None:
    """Set the collector for the service's steady state, once its code is loaded and
    its app built (a service's entry point, never a library or a test).

    What start-up made and keeps (modules, settings, compiled patterns) is moved out of
    the collector's sight, so a full collection no longer walks it, and the youngest
    generation is collected less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD)
