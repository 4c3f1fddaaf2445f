"""An item's history as an app shows it: an edit made offline is in the history at once (who,
which fields), named by a key of this phone's own until it is sent, and by its change hash once
sent, the same hash another phone shows for it."""

import asyncio
import time

from conftest import q, phone, space_meta, viewer, place


async def anna_with_a_bench(a, sync_a):
    """Anna registers, makes a space with a one-use invite and puts a bench on its map (not sent
    yet): her person, the invite code and the bench."""
    anna = await sync_a.register("Anna")
    space = (await sync_a.create_space(space_meta())).space.id
    code = await sync_a.create_invite(space, q.Role.RESIDENT, int(time.time() * 1000) + 3_600_000, 1)
    bench = a.create_item(q.NewItem(space_id=space, author=anna.person_id, content=place("Bank", 50.95, 6.95)))
    return anna, code, bench


async def ben_joins(b, sync_b, code):
    """Ben registers on a second phone, redeems the invite and syncs: his person."""
    ben = await sync_b.register("Ben")
    await sync_b.redeem_invite(code)
    await sync_b.sync_now()
    return ben


def test_an_edit_is_in_the_history_at_once_and_named_by_its_hash_once_sent(tmp_path, server_url):
    a, sync_a = phone(tmp_path, server_url, "anna")
    b, sync_b = phone(tmp_path, server_url, "ben")

    async def scenario():
        anna, code, bench = await anna_with_a_bench(a, sync_a)
        a.update_item(bench.id, q.ItemPatch(title={"de": "Bank am Spielplatz"}), anna.person_id)

        history = a.item_detail(bench.id, viewer(anna.person_id)).history
        assert [h.fields for h in history] == [["created"], ["title"]]
        assert history[1].person == anna.person_id
        assert history[1].change.startswith("pending-"), history[1].change

        await sync_a.sync_now()
        sent = a.item_detail(bench.id, viewer(anna.person_id)).history
        assert [len(h.change) for h in sent] == [64, 64], [h.change for h in sent]
        assert [(h.fields, h.person, h.at) for h in sent] == [(h.fields, h.person, h.at) for h in history]

        ben = await ben_joins(b, sync_b, code)
        seen = b.item_detail(bench.id, viewer(ben.person_id, q.Role.RESIDENT))
        assert seen.item.content.title == {"de": "Bank am Spielplatz"}
        assert seen.history[1].change == sent[1].change

    asyncio.run(scenario())
    a.close()
    b.close()


def test_a_burst_of_edits_shows_in_the_order_made_on_both_phones(tmp_path, server_url):
    """Edits made one after another (often within one millisecond) keep their order: as keys of
    this phone's own, once sent, and on a second phone, entry for entry."""
    a, sync_a = phone(tmp_path, server_url, "anna")
    b, sync_b = phone(tmp_path, server_url, "ben")

    async def scenario():
        anna, code, bench = await anna_with_a_bench(a, sync_a)
        titles = [f"Bank {n}" for n in range(1, 13)]
        for title in titles:
            a.update_item(bench.id, q.ItemPatch(title={"de": title}), anna.person_id)

        made = a.item_detail(bench.id, viewer(anna.person_id)).history
        positions = [int(h.change.removeprefix("pending-")) for h in made[1:]]
        assert len(positions) == len(titles)
        assert positions == sorted(positions), [h.change for h in made]

        await sync_a.sync_now()
        sent = a.item_detail(bench.id, viewer(anna.person_id)).history
        assert [(h.fields, h.at) for h in sent] == [(h.fields, h.at) for h in made]

        ben = await ben_joins(b, sync_b, code)
        seen = b.item_detail(bench.id, viewer(ben.person_id, q.Role.RESIDENT))
        assert seen.item.content.title == {"de": titles[-1]}
        assert [h.change for h in seen.history] == [h.change for h in sent]

    asyncio.run(scenario())
    a.close()
    b.close()
