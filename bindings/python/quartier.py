"""Quartier for Python: the whole API in one module.

uniffi generates one module per Rust crate that exports something: `quartier_domain` (the data
model: items, locations, roles, texts, the error), `quartier_core` (media and transfer records,
allowed actions) and `quartier_ffi` (the store, sync, queries). This module re-exports them, so that `import quartier as q` gives `q.QuartierStore`,
`q.Location`, `q.Role` side by side, as Kotlin and Swift users see them. It holds no logic.
"""

from quartier_domain import *  # noqa: F401,F403
from quartier_core import *  # noqa: F401,F403
from quartier_ffi import *  # noqa: F401,F403
