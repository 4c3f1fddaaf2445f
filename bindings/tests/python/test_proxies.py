"""Proxies for offliners, offers upkeep, audio and alt text through the bindings against a real
server: a reply to an item a volunteer recorded for a neighbour lands on the volunteer's
call-back list and the neighbour's withdrawal of consent erases the item everywhere; a checked
offer leaves the review list and residents see when it was checked; content warnings for a
missing alt text or transcript. Run through scripts/test-bindings-python."""

import asyncio
import datetime
import time

import pytest

from conftest import content, q, space_meta, viewer


def test_call_backs_withdrawn_consent_offers_upkeep_and_warnings(tmp_path, server_url):
    names = ("coord", "vera", "anna")
    stores = {n: q.QuartierStore.open(str(tmp_path / f"{n}.db")) for n in names}
    syncs = {n: q.QuartierSync(s, server_url) for n, s in stores.items()}
    coord, vera, anna = stores["coord"], stores["vera"], stores["anna"]

    async def scenario():
        people = {"coord": (await syncs["coord"].register("Koordination")).person_id}
        space = (await syncs["coord"].create_space(space_meta())).space.id
        for name, role in (("vera", q.Role.VOLUNTEER), ("anna", q.Role.RESIDENT)):
            code = await syncs["coord"].create_invite(space, role, int(time.time() * 1000) + 3_600_000, 1)
            people[name] = (await syncs[name].register(name.title())).person_id
            await syncs[name].redeem_invite(code)

        async def sync_all():
            for name in ("coord", "vera", "anna", "coord", "vera", "anna"):
                await syncs[name].sync_now()

        await sync_all()
        behalf = q.OnBehalfOf(
            name="Herr M.", consent=q.ConsentMethod.PHONE,
            consent_given_at=int(time.time() * 1000), witnessed_by="Frau S.")
        recorded = vera.create_item(q.NewItem(space_id=space, author=people["vera"], content=content(
            "Herr M. verschenkt einen Sessel", q.ItemDetails.POST(q.Post(post_type=q.PostType.NEWS)), on_behalf_of=behalf))).id
        await sync_all()
        anna.create_item(q.NewItem(space_id=space, author=people["anna"], content=content(
            "Ich hole ihn ab", q.ItemDetails.COMMENT(q.Comment(parent=recorded)))))
        await sync_all()
        [call_back] = vera.call_backs(False)
        assert (call_back.neighbour.name, call_back.notification.person) == ("Herr M.", people["anna"])
        assert call_back.notification.kind == q.NotificationKind.CALL_BACK
        vera.mark_notifications_read([call_back.notification.id])
        assert vera.call_backs(False) == [] and len(vera.call_backs(True)) == 1
        with pytest.raises(q.QuartierError.NotPermitted):
            anna.withdraw_consent(recorded, "")
        vera.withdraw_consent(recorded, "Herr M. hat widerrufen")
        await sync_all()
        for store, person, role in ((anna, people["anna"], q.Role.RESIDENT), (coord, people["coord"], q.Role.COORDINATOR)):
            with pytest.raises(q.QuartierError.NotFound):
                store.item_detail(recorded, viewer(person, role))

        # Offers upkeep.
        offer = coord.create_item(q.NewItem(space_id=space, author=people["coord"], content=content(
            "Sozialberatung", q.ItemDetails.OFFER(q.Offer(organization=q.Organization(name="Caritas")))))).id
        seen_by_coord = viewer(people["coord"], q.Role.COORDINATOR)
        assert [i.id for i in coord.offers_to_review(space, seen_by_coord, 180)] == [offer]
        checked = coord.confirm_offer(offer, people["coord"])
        assert checked.content.details[0].assured_by == people["coord"]
        assert coord.offers_to_review(space, seen_by_coord, 180) == []
        with pytest.raises(q.QuartierError.Invalid):
            coord.offers_to_review(space, seen_by_coord, -1)
        await sync_all()
        seen = anna.item_detail(offer, viewer(people["anna"], q.Role.RESIDENT)).item
        assert seen.content.details[0].assured_date == datetime.datetime.now(datetime.timezone.utc).date().isoformat()

    try:
        asyncio.run(scenario())
    finally:
        for store in stores.values():
            store.close()

    # Warnings: an image without alt text, a recording without a transcript.
    photo = q.MediaRef(hash="b" * 64, mime_type="image/jpeg", size=10)
    voice = q.MediaRef(hash="c" * 64, mime_type="audio/ogg", size=10, duration_ms=3000)
    audio = content("Sprachnachricht", q.ItemDetails.POST(q.Post(post_type=q.PostType.AUDIO)), media=[voice, photo])
    assert q.content_warnings(audio) == [q.ContentWarning.MISSING_TRANSCRIPT(media=0), q.ContentWarning.MISSING_ALT_TEXT(media=1)]
