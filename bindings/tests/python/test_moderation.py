"""Moderation through the bindings against a real server: a resident reports a post; the
coordinator's moderation queue (a live query) shows it with the reporter; hiding it removes it
from the other resident's feed after a sync while its author still sees it and is told why;
a resident's attempt to moderate is NotPermitted; mute hides a person on this phone only; a
block refuses the author's pending post with `blocked`. Run through scripts/test-bindings-python."""

import asyncio
import time

import pytest

from conftest import Recorder, post, q, space_meta, viewer


def titles(store, space, person, role):
    return sorted(i.content.title["de"] for i in store.feed(q.FeedQuery(space_id=space, viewer=viewer(person, role))).items)


def test_report_queue_hide_mute_and_block(tmp_path, server_url):
    stores = {n: q.QuartierStore.open(str(tmp_path / f"{n}.db")) for n in ("coord", "anna", "ben")}
    syncs = {n: q.QuartierSync(s, server_url) for n, s in stores.items()}
    coord, anna, ben = stores["coord"], stores["anna"], stores["ben"]

    async def scenario():
        people = {"coord": (await syncs["coord"].register("Koordination")).person_id}
        space = (await syncs["coord"].create_space(space_meta())).space.id
        for name in ("anna", "ben"):
            code = await syncs["coord"].create_invite(space, q.Role.RESIDENT, int(time.time() * 1000) + 3_600_000, 1)
            people[name] = (await syncs[name].register(name.title())).person_id
            await syncs[name].redeem_invite(code)

        async def sync_all():
            for name in ("anna", "ben", "coord", "anna", "ben"):
                await syncs[name].sync_now()

        await sync_all()
        spam = anna.create_item(q.NewItem(space_id=space, author=people["anna"], content=post("Billige Uhren"))).id
        await sync_all()
        assert titles(ben, space, people["ben"], q.Role.RESIDENT) == ["Billige Uhren"]

        queue = Recorder()
        subscription = coord.subscribe(q.LiveQuery.MODERATION_QUEUE(space=space), queue)
        queue.wait_for(lambda r: r.entries == [])
        with pytest.raises(q.QuartierError.Invalid):
            ben.report_item(spam, q.ReportReason.OTHER, "  ")
        ben.report_item(spam, q.ReportReason.SPAM, "Werbung")
        assert [p.action for p in ben.pending_moderation()] == [q.ModerationAction.REPORT]
        await syncs["ben"].sync_now()
        assert ben.pending_moderation() == []
        await syncs["coord"].sync_now()
        shown = queue.wait_for(lambda r: len(r.entries) == 1).entries[0]
        assert (shown.item, shown.author, shown.title) == (spam, people["anna"], "Billige Uhren")
        assert [(r.reporter, r.reason, r.text) for r in shown.reports] == [(people["ben"], q.ReportReason.SPAM, "Werbung")]
        assert coord.moderation_queue(space) == [shown]

        with pytest.raises(q.QuartierError.NotPermitted, match=r"\(forbidden\)"):
            ben.moderate_item(spam, q.ModerationAction.HIDE, "")
        with pytest.raises(q.QuartierError.Invalid):
            coord.moderate_item(spam, q.ModerationAction.BLOCK, "")
        coord.moderate_item(spam, q.ModerationAction.HIDE, "Keine Werbung")
        queue.wait_for(lambda r: r.entries and r.entries[0].hidden)
        await sync_all()
        queue.wait_for(lambda r: r.entries == [])
        assert titles(ben, space, people["ben"], q.Role.RESIDENT) == []
        assert titles(anna, space, people["anna"], q.Role.RESIDENT) == ["Billige Uhren"]
        told = anna.moderation_log(space, 10)
        assert [(e.action, e.text, e.actor) for e in told] == [(q.ModerationAction.HIDE, "Keine Werbung", None)]
        subscription.cancel()

        # Mute: Anna's next post is hidden on Ben's phone only.
        ben.set_muted(people["anna"], True)
        assert ben.muted_persons() == [people["anna"]]
        anna.create_item(q.NewItem(space_id=space, author=people["anna"], content=post("Hofflohmarkt")))
        await sync_all()
        assert titles(ben, space, people["ben"], q.Role.RESIDENT) == []
        assert titles(coord, space, people["coord"], q.Role.COORDINATOR) == ["Hofflohmarkt"]

        # Block: Anna's pending post is refused with `blocked`; her next write at once.
        anna.create_item(q.NewItem(space_id=space, author=people["anna"], content=post("Noch mehr Uhren")))
        coord.moderate_member(space, people["anna"], q.ModerationAction.BLOCK, "wiederholt")
        await syncs["coord"].sync_now()
        report = await syncs["anna"].sync_now()
        assert [r.code for r in report.rejected] == ["blocked"]
        assert anna.is_blocked(space)
        with pytest.raises(q.QuartierError.NotPermitted, match=r"\(blocked\)"):
            anna.create_item(q.NewItem(space_id=space, author=people["anna"], content=post("Trotzdem")))

    try:
        asyncio.run(scenario())
    finally:
        for store in stores.values():
            store.close()
