"""A change the server refuses, seen from an app: the refused edit is listed as undelivered with
its code, the item returns to what the server accepted, the person's next allowed change of the
same item still arrives, and both phones end up showing the same thing."""

import asyncio
import time

from conftest import q, space_meta, viewer, place


def test_refused_edit_does_not_wedge_the_next_allowed_change(tmp_path, server_url):
    a = q.QuartierStore.open(str(tmp_path / "coordinator.db"))
    b = q.QuartierStore.open(str(tmp_path / "volunteer.db"))
    sync_a = q.QuartierSync(a, server_url)
    sync_b = q.QuartierSync(b, server_url)

    async def scenario():
        coord = await sync_a.register("Koordination")
        space = (await sync_a.create_space(space_meta())).space.id
        code = await sync_a.create_invite(space, q.Role.VOLUNTEER, int(time.time() * 1000) + 3_600_000, 1)
        vol = await sync_b.register("Ehrenamt")
        await sync_b.redeem_invite(code)
        await sync_b.sync_now()
        bench = b.create_item(q.NewItem(space_id=space, author=vol.person_id, content=place("Bank am Spielplatz", 50.95, 6.95)))
        await sync_b.sync_now()
        await sync_a.sync_now()

        # The coordinator lowers the volunteer to resident; the volunteer's phone, offline, still
        # holds the old role, so its own check lets the edit through and the server refuses it.
        await sync_a.set_role(space, vol.person_id, q.Role.RESIDENT)
        b.update_item(bench.id, q.ItemPatch(title={"de": "Bank (kaputt)"}), vol.person_id)
        b.delete_item(bench.id, vol.person_id)

        report = await sync_b.sync_now()
        assert [(r.doc_id, r.code, r.reapplied) for r in report.rejected] == [(bench.id, "forbidden", 1)]
        assert report.deferred == []
        assert b.outbox_len() == 0

        undelivered = b.undelivered_changes()
        assert len(undelivered) == 1
        assert undelivered[0].code == "forbidden" and undelivered[0].fields == ["title"]
        assert "Bank (kaputt)" in undelivered[0].content

        await sync_a.sync_now()
        # The allowed deletion arrived: the place is gone from both feeds, on both phones.
        for store, who, role in ((a, coord.person_id, q.Role.COORDINATOR), (b, vol.person_id, q.Role.RESIDENT)):
            feed = store.feed(q.FeedQuery(space_id=space, viewer=viewer(who, role)))
            assert [i.id for i in feed.items] == []

        b.discard_undelivered(undelivered[0].id)
        assert b.undelivered_changes() == []

    asyncio.run(scenario())
    a.close()
    b.close()
