"""The garbage collector, set for a server's heap once the gateway has started.

CPython's cyclic collector runs a young-generation pass every 700 container allocations and,
now and then, passes over older generations, up to every object the process holds. A gateway
holds a large heap that lives as long as it does (the schema, strawberry's and SQLAlchemy's
compiled structures, the sources' connection pools), and a request allocates on the order of a
hundred thousand short-lived containers (result dicts, paths, records, timeline entries), nearly
all freed by reference counting the moment they are done with. With the default settings the
collector spent a third of the dashboard page's server CPU walking objects that were never
garbage (``python -m bench ab a``: 0.68 of the CPU per request with a threshold of 100,000).

So, once the app is loaded and its sources are open: one full collection, then ``gc.freeze()``
moves every survivor to the permanent generation, which no collection walks again; and the
young generation is collected every :data:`YOUNG_THRESHOLD` allocations instead of 700. Cyclic
garbage is still collected, only in larger batches: memory held by it is bounded by what that
many allocations make. 20,000 rather than 100,000: against 100,000 it took 0.92-0.94 of the CPU
and a lower peak (134 against 153 MiB RSS over the same requests), the young generation fitting
the processor's caches better.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Container allocations (net of frees) between two young-generation collections."""

OLDER_THRESHOLDS = (50, 100)
"""Young collections per middle one, middle ones per full one (CPython's are 10 and 10)."""


def settle_heap() -> None:
    """Freeze what the started gateway holds and space out collections (see the module)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
