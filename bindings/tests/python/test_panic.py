"""Panics never cross the boundary: they arrive as QuartierError.Internal, and the library stays
usable. Exceptions thrown by foreign listeners do not take the library down either."""

import asyncio
import time

import pytest

from conftest import Recorder, person, post, q, space_meta, viewer


def test_panic_becomes_internal_error_and_store_stays_usable(store):
    me = person()
    space = store.create_space(space_meta(), me).id
    for attempt in range(3):
        with pytest.raises(q.QuartierError.Internal, match="diagnostic panic: boom"):
            store.diagnostic_panic(f"boom {attempt}")
    item = store.create_item(q.NewItem(space_id=space, author=me, content=post("Nach der Panik")))
    assert [i.id for i in store.feed(q.FeedQuery(space_id=space, viewer=viewer(me))).items] == [item.id]
    store.integrity_check()


def test_throwing_listener_does_not_break_live_queries(store):
    me = person()
    space = store.create_space(space_meta(), me).id

    class Throwing(q.LiveQueryListener):
        calls = 0

        def on_result(self, result):
            Throwing.calls += 1
            raise RuntimeError("listener bug")

        def on_error(self, error):
            raise RuntimeError("listener bug")

    bad = store.subscribe_feed(q.FeedQuery(space_id=space, viewer=viewer(me)), Throwing())
    good = Recorder()
    sub = store.subscribe_feed(q.FeedQuery(space_id=space, viewer=viewer(me)), good)
    store.create_item(q.NewItem(space_id=space, author=me, content=post("Trotzdem")))
    good.wait_for(lambda r: len(r.page.items) == 1)
    assert Throwing.calls >= 1
    assert len(store.spaces()) == 1
    bad.cancel()
    sub.cancel()


def test_throwing_progress_listener_fails_the_sync_not_the_library(tmp_path, server_url):
    s = q.QuartierStore.open(str(tmp_path / "p.db"))
    sync = q.QuartierSync(s, server_url)

    class Throwing(q.SyncProgressListener):
        def on_progress(self, progress):
            raise RuntimeError("progress bug")

    async def run():
        account = await sync.register("Panik")
        space = (await sync.create_space(space_meta())).space.id
        s.create_item(q.NewItem(space_id=space, author=account.person_id, content=post("Eins")))
        # The foreign exception unwinds through the core's sync loop as a panic, caught at the
        # boundary.
        with pytest.raises(q.QuartierError.Internal):
            await sync.sync_now(Throwing())
        report = await sync.sync_now()
        assert report.rounds >= 1
        assert s.outbox_len() == 0

    asyncio.run(run())
    s.close()
