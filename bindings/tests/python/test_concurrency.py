"""Many threads calling one store at once while live-query listeners fire; listeners never run
on a caller's thread."""

import threading
from concurrent.futures import ThreadPoolExecutor

from conftest import Recorder, person, post, q, space_meta, viewer

THREADS = 8
ITEMS_PER_THREAD = 40


def test_many_threads_write_and_read_while_listeners_fire(store):
    me = person()
    space = store.create_space(space_meta(), me).id
    v = viewer(me)
    recorders = [Recorder() for _ in range(3)]
    subs = [store.subscribe_feed(q.FeedQuery(space_id=space, viewer=v, limit=1000), r) for r in recorders]
    search_recorder = Recorder()
    subs.append(store.subscribe_search(q.SearchRequest(space_id=space, viewer=v, text="eintrag", limit=1000), search_recorder))
    caller_threads = set()
    lock = threading.Lock()

    def work(n):
        with lock:
            caller_threads.add(threading.get_ident())
        for i in range(ITEMS_PER_THREAD):
            store.create_item(q.NewItem(space_id=space, author=me, content=post(f"Eintrag {n}-{i}")))
            store.feed(q.FeedQuery(space_id=space, viewer=v, limit=10))
            store.search(q.SearchRequest(space_id=space, viewer=v, text=f"eintrag {n}"))
            store.spaces()
        return n

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        assert sorted(pool.map(work, range(THREADS))) == list(range(THREADS))

    total = THREADS * ITEMS_PER_THREAD
    assert len(store.feed(q.FeedQuery(space_id=space, viewer=v, limit=1000)).items) == total
    for r in recorders:
        r.wait_for(lambda res: len(res.page.items) == total)
        assert not r.errors
        assert r.threads.isdisjoint(caller_threads), "listeners run on the store's notifier thread"
        assert threading.get_ident() not in r.threads
    search_recorder.wait_for(lambda res: len(res.hits) == total)
    for s in subs:
        s.cancel()


def test_subscribe_and_cancel_from_many_threads(store):
    me = person()
    space = store.create_space(space_meta(), me).id
    v = viewer(me)

    def churn(_):
        for _ in range(50):
            r = Recorder()
            sub = store.subscribe_feed(q.FeedQuery(space_id=space, viewer=v), r)
            store.create_item(q.NewItem(space_id=space, author=me, content=post("x")))
            sub.cancel()
        return True

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(churn, range(6)))
    final = Recorder()
    sub = store.subscribe_feed(q.FeedQuery(space_id=space, viewer=v, limit=1000), final)
    final.wait_for(lambda res: len(res.page.items) == 300)
    sub.cancel()
