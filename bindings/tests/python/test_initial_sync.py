"""A new member's first sync of a busy space, as an app sees it: the second phone stores the
space's items as a page (on several threads when the page is large) and shows every one of
them in its feed, its search and its map, at once."""

import asyncio
import time

from conftest import q, phone, space_meta, viewer, place, post


def test_a_new_member_sees_every_item_of_a_busy_space(tmp_path, server_url):
    a, sync_a = phone(tmp_path, server_url, "anna")
    b, sync_b = phone(tmp_path, server_url, "ben")

    async def scenario():
        anna = await sync_a.register("Anna")
        space = (await sync_a.create_space(space_meta())).space.id
        code = await sync_a.create_invite(space, q.Role.RESIDENT, int(time.time() * 1000) + 3_600_000, 1)
        made = {}
        for n in range(150):
            content = post(f"Flohmarkt {n}") if n % 2 else place(f"Bank {n}", 50.9 + n * 1e-4, 6.9)
            made[n] = a.create_item(q.NewItem(space_id=space, author=anna.person_id, content=content)).id
        await sync_a.sync_now()

        ben = await sync_b.register("Ben")
        await sync_b.redeem_invite(code)
        await sync_b.sync_now()
        v = viewer(ben.person_id, q.Role.RESIDENT)

        feed = b.feed(q.FeedQuery(space_id=space, viewer=v, limit=1000)).items
        assert sorted(i.id for i in feed) == sorted(made.values())
        assert {i.id: i.content.title for i in feed}[made[77]] == {"de": "Flohmarkt 77"}

        hits = b.search(q.SearchRequest(space_id=space, viewer=v, text="flohmarkt 77", limit=20))
        assert [h.item.id for h in hits] == [made[77]]
        assert len(b.search(q.SearchRequest(space_id=space, viewer=v, text="flohmarkt", limit=1000))) == 75

        pins = b.viewport(
            q.ViewportQuery(space_id=space, viewer=v, south=50.89, west=6.89, north=50.92, east=6.91, limit=1000)
        )
        assert sorted(i.id for i in pins) == sorted(made[n] for n in range(0, 150, 2))

    asyncio.run(scenario())
    a.close()
    b.close()
