"""Quartier for Python: the whole API in one module.

uniffi generates one module per Rust crate that exports something: `quartier_domain` (the data
model: items, patches, locations, roles, texts, the error), `quartier_core` (queries and their
results, live queries, media, transfer and sync records, allowed actions) and `quartier_ffi`
(the store, sync, listeners, search hits, live results). This module re-exports them, so that
`import quartier as q` gives `q.QuartierStore`, `q.Location`, `q.Role` side by side, as Kotlin
and Swift users see them. Its one piece of
logic: the library's threads are stopped when the interpreter exits (`atexit`), before
finalisation, so that none of them calls back into a finalising interpreter, which aborts the
process ("FATAL: exception not rethrown").
"""

import atexit

from quartier_domain import *  # noqa: F401,F403
from quartier_core import *  # noqa: F401,F403
from quartier_ffi import *  # noqa: F401,F403

atexit.register(shutdown_runtime)  # noqa: F405
