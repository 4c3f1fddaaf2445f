"""No leak: 10 000 create/drop cycles of objects and subscriptions leave memory flat.

RSS comes from /proc/self/status (Linux). Each test warms up first (allocator pools, SQLite
caches, uniffi's handle maps reach their working size), then measures RSS before and after
10 000 cycles. The bound, 4 MiB over 10 000 cycles, fails on a leak of about 420 bytes per
cycle or more; foreign listeners are also checked to be released (weak references), which
catches even a leak of one handle per cycle. Figures go to target/bindings/leak-figures.json.
"""

import gc
import json
import os
import weakref

from conftest import Recorder, person, q, space_meta, viewer

CYCLES = 10_000
WARM_UP = 1_000
BOUND_BYTES = 4 * 1024 * 1024
FIGURES = {}


def rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(name, cycle):
    for i in range(WARM_UP):
        cycle(i)
    gc.collect()
    before = rss_bytes()
    for i in range(CYCLES):
        cycle(i)
    gc.collect()
    after = rss_bytes()
    FIGURES[name] = {"cycles": CYCLES, "rss_before_kib": before // 1024, "rss_after_kib": after // 1024,
                     "growth_kib": (after - before) // 1024, "bound_kib": BOUND_BYTES // 1024}
    out = os.environ.get("QUARTIER_BINDINGS_DIR")
    if out:
        with open(os.path.join(out, "..", "leak-figures.json"), "w") as f:
            json.dump(FIGURES, f, indent=2)
    print(f"\n{name}: RSS {before // 1024} KiB -> {after // 1024} KiB over {CYCLES} cycles")
    assert after - before < BOUND_BYTES, FIGURES[name]


def test_objects_and_subscriptions_do_not_leak(store):
    me = person()
    space = store.create_space(space_meta(), me).id
    query = q.FeedQuery(space_id=space, viewer=viewer(me))
    released = []

    def cycle(i):
        token = q.CancelToken()
        token.cancel()
        sync = q.QuartierSync(store, "http://127.0.0.1:9")
        listener = Recorder()
        sub = store.subscribe_feed(query, listener)
        if i % 2:
            sub.cancel()  # half cancelled explicitly, half only dropped
        if i % 1000 == 0:
            released.append(weakref.ref(listener))
        store.space(space)  # records across the boundary
        del token, sync, listener, sub

    measure("objects_and_subscriptions", cycle)
    gc.collect()
    assert released and all(r() is None for r in released), "dropped subscriptions release their listeners"


def test_store_open_close_cycles_do_not_leak(tmp_path):
    path = str(tmp_path / "cycled.db")
    q.QuartierStore.open(path).close()

    def cycle(i):
        s = q.QuartierStore.open(path)
        if i % 2:
            s.close()
        del s

    measure("store_open_close", cycle)
