"""The local permission check through the bindings: a resident's edit of a coordinator's offer
is refused at once with NotPermitted (the server's code in the message) and nothing is queued;
allowed_actions / may_create tell the app beforehand; the resident's allowed edits still sync
and both devices converge. Run through scripts/test-bindings-python."""

import asyncio
import time

import pytest

from conftest import content, post, q, space_meta, viewer


def offer(title):
    return content(title, q.ItemDetails.OFFER(q.Offer(organization=q.Organization(name="Caritas Köln"))))


def titles(store, space, person, role):
    return sorted(i.content.title["de"] for i in store.feed(q.FeedQuery(space_id=space, viewer=viewer(person, role))).items)


def test_a_resident_is_refused_locally_and_the_devices_converge(tmp_path, server_url):
    a = q.QuartierStore.open(str(tmp_path / "coordinator.db"))
    b = q.QuartierStore.open(str(tmp_path / "resident.db"))
    sync_a = q.QuartierSync(a, server_url)
    sync_b = q.QuartierSync(b, server_url)

    async def scenario():
        coord = (await sync_a.register("Koordination")).person_id
        space = (await sync_a.create_space(space_meta())).space.id
        counselling = a.create_item(q.NewItem(space_id=space, author=coord, content=offer("Sozialberatung"))).id
        await sync_a.sync_now()
        code = await sync_a.create_invite(space, q.Role.RESIDENT, int(time.time() * 1000) + 3_600_000, 1)
        me = (await sync_b.register("Nachbarin")).person_id
        await sync_b.redeem_invite(code)
        await sync_b.sync_now()

        allowed = b.allowed_actions(counselling, me)
        assert (allowed.edit, allowed.delete) == (False, False)
        assert not b.may_create(space, q.ItemKind.OFFER, q.Audience.EVERYONE, me)
        assert b.may_create(space, q.ItemKind.POST, q.Audience.EVERYONE, me)
        with pytest.raises(q.QuartierError.NotPermitted, match=r"\(forbidden\)"):
            b.update_item(counselling, q.ItemPatch(title={"de": "Meine Beratung"}), me)
        with pytest.raises(q.QuartierError.NotPermitted, match=r"\(forbidden\)"):
            b.delete_item(counselling, me)
        with pytest.raises(q.QuartierError.NotPermitted, match=r"\(not_your_change\)") as caught:
            b.update_item(counselling, q.ItemPatch(title={"de": "Im Namen der Koordination"}), coord)
        assert caught.value.error_code() == caught.value.code == "not_your_change" and not caught.value.is_retryable()
        assert b.outbox_len() == 0

        # The next allowed edit is not held up by anything.
        mine = b.create_item(q.NewItem(space_id=space, author=me, content=post("Flohmarkt"))).id
        b.update_item(mine, q.ItemPatch(title={"de": "Flohmarkt am Samstag"}), me)
        report = await sync_b.sync_now()
        assert (report.pushed, len(report.rejected)) == (2, 0)
        await sync_a.sync_now()
        expected = ["Flohmarkt am Samstag", "Sozialberatung"]
        assert titles(a, space, coord, q.Role.COORDINATOR) == expected
        assert titles(b, space, me, q.Role.RESIDENT) == expected
        moderation = a.allowed_actions(mine, coord)
        assert (moderation.edit, moderation.delete) == (True, True)

    asyncio.run(scenario())
    a.close()
    b.close()


def test_without_memberships_everything_is_allowed(store):
    author = "6f1c2b2e-8f5e-4b5a-9d61-0a1b2c3d4e5f"
    space = store.create_space(space_meta(), author).id
    item = store.create_item(q.NewItem(space_id=space, author=author, content=offer("Angebot"))).id
    allowed = store.allowed_actions(item, author)
    assert (allowed.edit, allowed.delete) == (True, True)
    assert store.may_create(space, q.ItemKind.OFFER, q.Audience.CASEWORKERS, author)
