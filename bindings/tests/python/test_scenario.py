"""The scenario every binding runs: open a store, a space, items of several kinds, search, a map
query, a live query that updates, sync of two stores through a real server, typed errors."""

import asyncio
import time

import pytest

from conftest import Recorder, content, person, place, post, q, space_meta, viewer


def test_store_identity_and_spaces(store):
    assert len(store.device_public_key()) == 32
    assert len(store.device_actor()) > 0
    assert store.account() is None
    me = person()
    space = store.create_space(space_meta(), me)
    assert [s.id for s in store.spaces()] == [space.id]
    assert store.space(space.id).meta.name["de"] == "Nippes hilft"
    renamed = q.SpaceMeta(name={"de": "Nippes"}, time_zone="Europe/Berlin", default_language="de")
    assert store.update_space(space.id, renamed, me).meta.name == {"de": "Nippes"}


def test_items_of_every_kind_queries_and_edits(store):
    me = person()
    space = store.create_space(space_meta(), me).id
    v = viewer(me)
    news = store.create_item(q.NewItem(space_id=space, author=me, content=post("Straßenfest in Nippes", body={"de": "Am Samstag feiern wir."}, tags=["fest"])))
    cafe = store.create_item(q.NewItem(space_id=space, author=me, content=place("Nachbarschaftscafé", 50.9652, 6.9571)))
    offer = store.create_item(q.NewItem(space_id=space, author=me, content=content(
        "Tafel-Ausgabe",
        q.ItemDetails.OFFER(q.Offer(
            organization=q.Organization(name="Kölner Tafel e.V."),
            schedules=[q.OpeningRule(rrule="FREQ=DAILY", opens="00:00", closes="00:00", valid_from="2026-01-01")],
        )),
        location=q.Location(lat=50.9668, lon=6.9526, source=q.PositionSource.MANUAL),
    )))
    event = store.create_item(q.NewItem(space_id=space, author=me, content=content(
        "Repair-Café",
        q.ItemDetails.EVENT(q.Event(timing=q.EventTiming(
            start="2026-03-05T18:00", end="2026-03-05T21:00", time_zone="Europe/Berlin",
            rrule="FREQ=WEEKLY;COUNT=4"), venue="Bürgerzentrum")),
    )))
    request = store.create_item(q.NewItem(space_id=space, author=me, content=content(
        "Suche Hilfe beim Einkaufen",
        q.ItemDetails.REQUEST(q.Request(direction=q.RequestDirection.NEED, category="shopping", state=q.RequestState.OPEN)),
    )))
    obs = store.create_item(q.NewItem(space_id=space, author=me, content=content(
        "Rampe am Eingang",
        q.ItemDetails.OBSERVATION(q.Observation(preset="accessibility", fields={
            "ramp": q.FieldValue.BOOL(True), "width_cm": q.FieldValue.NUMBER(90.0),
            "note": q.FieldValue.TEXT("steil")})),
        location=q.Location(lat=50.9650, lon=6.9560, accuracy_m=8.0, source=q.PositionSource.GPS),
    )))
    comment = store.create_item(q.NewItem(space_id=space, author=me, content=content(
        "Ich komme!", q.ItemDetails.COMMENT(q.Comment(parent=news.id)))))

    assert [i.kind() for i in (news, cafe, offer, event, request, obs, comment)] == [
        q.ItemKind.POST, q.ItemKind.PLACE, q.ItemKind.OFFER, q.ItemKind.EVENT,
        q.ItemKind.REQUEST, q.ItemKind.OBSERVATION, q.ItemKind.COMMENT]
    # Typed details come back as they went in.
    assert obs.content.details[0].fields["width_cm"] == q.FieldValue.NUMBER(90.0)
    assert event.content.details[0].timing.start == "2026-03-05T18:00:00"
    assert offer.content.details[0].schedules[0].opens == "00:00:00"

    page = store.feed(q.FeedQuery(space_id=space, viewer=v))
    assert {i.id for i in page.items} == {news.id, cafe.id, offer.id, event.id, request.id, obs.id}

    # Search folds case and diacritics: "strassenfest" finds "Straßenfest".
    hits = store.search(q.SearchRequest(space_id=space, viewer=v, text="strassenfest"))
    assert [h.item.id for h in hits] == [news.id]
    assert hits[0].title.matches, "the match is marked in the title snippet"

    # Map: a viewport around Nippes holds the place, the offer and the observation.
    box = store.viewport(q.ViewportQuery(space_id=space, viewer=v, south=50.96, west=6.95, north=50.97, east=6.96))
    assert {i.id for i in box} == {cafe.id, offer.id, obs.id}
    pins = store.map_pins(q.ViewportQuery(space_id=space, viewer=v, south=50.96, west=6.95, north=50.97, east=6.96))
    assert {p.id for p in pins} == {cafe.id, offer.id, obs.id}
    cafe_pin = next(p for p in pins if p.id == cafe.id)
    assert (cafe_pin.kind, cafe_pin.title, cafe_pin.lat, cafe_pin.lon) == (q.ItemKind.PLACE, cafe.content.title, cafe.content.location.lat, cafe.content.location.lon)
    near = store.near(q.RadiusQuery(space_id=space, viewer=v, center=q.Location(lat=50.9652, lon=6.9571, source=q.PositionSource.MANUAL), radius_m=100.0))
    assert near[0].item.id == cafe.id and near[0].distance_m < 1.0

    assert [i.id for i in store.open_offers(q.OpenOffersQuery(space_id=space, viewer=v))] == [offer.id]
    march = store.events_between(q.EventsQuery(space_id=space, viewer=v, start=1772323200000, end=1775001600000))
    assert len(march) == 4 and all(o.item.id == event.id for o in march)

    detail = store.item_detail(news.id, v)
    assert [c.id for c in detail.comments] == [comment.id]
    assert detail.history[0].fields == ["created"]

    edited = store.update_item(news.id, q.ItemPatch(title={"de": "Straßenfest verschoben"}, tags=["fest", "termin"]), me)
    assert edited.content.title == {"de": "Straßenfest verschoben"}
    assert sorted(edited.content.tags) == ["fest", "termin"]
    assert [h.fields for h in store.item_detail(news.id, v).history][-1] == ["title", "tags"]

    store.delete_item(request.id, me)
    assert request.id not in {i.id for i in store.feed(q.FeedQuery(space_id=space, viewer=v)).items}
    assert store.erase_item(news.id) == 2  # the post and its comment


def test_create_item_from_json(store):
    me = person()
    space = store.create_space(space_meta(), me).id
    item = store.create_item_json(
        '{"space": "%s", "author": "%s", "title": {"de": "Aus JSON"}, "audience": "everyone",'
        ' "status": "published", "details": {"kind": "post", "post_type": "notice"}}' % (space, me))
    assert item.content.details == q.ItemDetails.POST(q.Post(post_type=q.PostType.NOTICE))
    with pytest.raises(q.QuartierError.UnknownKind, match="unknown item kind `poem`"):
        store.create_item_json('{"space": "%s", "author": "%s", "title": {"de": "x"}, "audience": "everyone",'
                               ' "status": "published", "details": {"kind": "poem"}}' % (space, me))
    with pytest.raises(q.QuartierError.MalformedInput):
        store.create_item_json("{not json")


def test_live_query_updates(store):
    me = person()
    space = store.create_space(space_meta(), me).id
    recorder = Recorder()
    sub = store.subscribe_feed(q.FeedQuery(space_id=space, viewer=viewer(me)), recorder)
    first = recorder.wait_for(lambda r: r.is_FEED())
    assert first.page.items == []
    item = store.create_item(q.NewItem(space_id=space, author=me, content=post("Flohmarkt")))
    latest = recorder.wait_for(lambda r: len(r.page.items) == 1)
    assert latest.page.items[0].id == item.id
    sub.cancel()
    assert sub.is_cancelled()
    seen = len(recorder.results)
    store.create_item(q.NewItem(space_id=space, author=me, content=post("Nach dem Abbestellen")))
    # A second, still-subscribed listener proves the commit was processed by the notifier.
    witness = Recorder()
    witness_sub = store.subscribe_feed(q.FeedQuery(space_id=space, viewer=viewer(me)), witness)
    witness.wait_for(lambda r: len(r.page.items) == 2)
    assert len(recorder.results) == seen, "a cancelled subscription is not called again"
    witness_sub.cancel()


def test_live_detail_reports_errors_typed(store):
    me = person()
    space = store.create_space(space_meta(), me).id
    recorder = Recorder()
    sub = store.subscribe_detail(person(), viewer(me), recorder)  # an item that does not exist
    with recorder.cond:
        assert recorder.cond.wait_for(lambda: recorder.errors, 30)
    assert isinstance(recorder.errors[0], q.QuartierError.NotFound)
    sub.cancel()


def test_typed_errors(store, tmp_path):
    me = person()
    with pytest.raises(q.QuartierError.Invalid, match="not a UUID"):
        store.space("not-a-uuid")
    with pytest.raises(q.QuartierError.NotFound, match="not found"):
        store.space(person())
    space = store.create_space(space_meta(), me).id
    with pytest.raises(q.QuartierError.Invalid, match="title"):
        store.create_item(q.NewItem(space_id=space, author=me, content=post("   ")))
    with pytest.raises(q.QuartierError.InvalidCoordinates):
        store.create_item(q.NewItem(space_id=space, author=me, content=place("Nirgendwo", 123.0, 6.9)))
    with pytest.raises(q.QuartierError.Invalid, match="needs a location"):
        store.create_item(q.NewItem(space_id=space, author=me, content=content(
            "Ohne Ort", q.ItemDetails.PLACE(q.Place()))))
    with pytest.raises(q.QuartierError.Invalid, match="not a time"):
        store.create_item(q.NewItem(space_id=space, author=me, content=content("x", q.ItemDetails.OFFER(
            q.Offer(organization=q.Organization(name="o"),
                    schedules=[q.OpeningRule(rrule="FREQ=DAILY", opens="25:99", closes="10:00")])))))
    # Local dates and date-times are checked while crossing too: a typed error, not a crash.
    with pytest.raises(q.QuartierError.Invalid, match="`2026-13-01` is not a date YYYY-MM-DD"):
        store.create_item(q.NewItem(space_id=space, author=me, content=content("x", q.ItemDetails.OFFER(
            q.Offer(organization=q.Organization(name="o"),
                    schedules=[q.OpeningRule(rrule="FREQ=DAILY", opens="09:00", closes="10:00",
                                             closed_on=["2026-13-01"])])))))
    with pytest.raises(q.QuartierError.Invalid, match="`morgen` is not a local date-time"):
        store.create_item(q.NewItem(space_id=space, author=me, content=content("x", q.ItemDetails.EVENT(
            q.Event(timing=q.EventTiming(start="morgen", end="2026-03-05T19:00", time_zone="Europe/Berlin"))))))
    with pytest.raises(q.QuartierError.Schedule):
        store.create_item(q.NewItem(space_id=space, author=me, content=content("x", q.ItemDetails.EVENT(
            q.Event(timing=q.EventTiming(start="2026-03-05T18:00", end="2026-03-05T19:00",
                                         time_zone="Mars/Olympus"))))))
    news = store.create_item(q.NewItem(space_id=space, author=me, content=post("Neu")))
    with pytest.raises(q.QuartierError.KindChange):
        store.update_item(news.id, q.ItemPatch(details=q.ItemDetails.COMMENT(q.Comment(parent=news.id))), me)
    with pytest.raises(q.QuartierError.Invalid, match="set and cleared"):
        store.update_item(news.id, q.ItemPatch(valid_until=1, clear_valid_until=True), me)
    # Values the core types check while crossing: a negative limit, a cursor no page returned.
    with pytest.raises(q.QuartierError.Invalid, match="limit must be between 0 and its maximum, got -1"):
        store.feed(q.FeedQuery(space_id=space, viewer=viewer(me), limit=-1))
    with pytest.raises(q.QuartierError.Invalid, match="feed cursor"):
        store.feed(q.FeedQuery(space_id=space, viewer=viewer(me), after="nicht-von-hier"))
    with pytest.raises(q.QuartierError.Search):
        store.search(q.SearchRequest(space_id=space, viewer=viewer(me), text="x" * 10_000))
    with pytest.raises(q.QuartierError.Corrupt):
        bogus = tmp_path / "not-a-store.db"
        bogus.write_bytes(b"this is not sqlite" * 100)
        q.QuartierStore.open(str(bogus))
    # Every error is a QuartierError with a message.
    with pytest.raises(q.QuartierError) as caught:
        store.item_detail(person(), viewer(me))
    assert "not found" in str(caught.value)


def test_closed_store_refuses_calls(tmp_path):
    s = q.QuartierStore.open(str(tmp_path / "c.db"))
    s.close()
    s.close()  # idempotent
    assert s.is_closed()
    with pytest.raises(q.QuartierError.Closed):
        s.spaces()
    reopened = q.QuartierStore.open(str(tmp_path / "c.db"))
    assert reopened.spaces() == []
    reopened.close()


def test_sync_two_stores_through_the_server(tmp_path, server_url):
    a = q.QuartierStore.open(str(tmp_path / "a.db"))
    b = q.QuartierStore.open(str(tmp_path / "b.db"))
    sync_a = q.QuartierSync(a, server_url)
    sync_b = q.QuartierSync(b, server_url)

    async def scenario():
        coord = await sync_a.register("Koordination")
        assert a.account().person_id == coord.person_id
        # One call creates the space, registers it and pushes it.
        shared = await sync_a.create_space(space_meta())
        space = shared.space.id
        assert shared.membership.role == q.Role.COORDINATOR
        assert [m.space_id for m in a.memberships()] == [space]
        code = await sync_a.create_invite(space, q.Role.VOLUNTEER, int(time.time() * 1000) + 3_600_000, 1)
        vol = await sync_b.register("Ehrenamt")
        joined = await sync_b.redeem_invite(code)
        assert (joined.space_id, joined.role) == (space, q.Role.VOLUNTEER)
        # The invitee finds the space at once (no sync of the coordinator needed first).
        await sync_b.sync_now()
        assert b.space(space).meta.name["de"] == "Nippes hilft"
        for title in ("Erste Hilfe Kurs", "Lesepaten gesucht", "Fahrradwerkstatt"):
            a.create_item(q.NewItem(space_id=space, author=coord.person_id, content=post(title)))
        assert a.outbox_len() >= 3
        progress = []

        class Progress(q.SyncProgressListener):
            def on_progress(self, p):
                progress.append(p)

        pushed = await sync_a.sync_now(Progress())
        assert pushed.pushed >= 3 and progress and progress[-1].outbox_left == 0
        pulled = await sync_b.sync_now()
        assert pulled.received >= 3 and pulled.bytes_received > 0
        titles = {i.content.title["de"] for i in b.feed(q.FeedQuery(space_id=space, viewer=viewer(vol.person_id, q.Role.VOLUNTEER))).items}
        assert titles == {"Erste Hilfe Kurs", "Lesepaten gesucht", "Fahrradwerkstatt"}
        # And back: B's post reaches A.
        b.create_item(q.NewItem(space_id=space, author=vol.person_id, content=post("Biete Nachhilfe")))
        await sync_b.sync_now()
        await sync_a.sync_now()
        assert "Biete Nachhilfe" in {i.content.title["de"] for i in a.feed(q.FeedQuery(space_id=space, viewer=viewer(coord.person_id))).items}
        status = sync_a.status()
        assert [s.space_id for s in status] == [space] and status[0].last_success is not None
        # Typed server errors: a volunteer may not invite; an unknown code is refused.
        with pytest.raises(q.QuartierError.Server) as refused:
            await sync_b.create_invite(space, q.Role.VOLUNTEER, int(time.time() * 1000) + 60_000, 1)
        # Structured facts, not parsed out of the message: the server's code and status, and
        # that trying again will not help (unlike Offline below).
        assert refused.value.error_code() == refused.value.code and refused.value.status == refused.value.http_status()
        assert 400 <= refused.value.http_status() < 500 and not refused.value.is_retryable()
        with pytest.raises(q.QuartierError.Server):
            await sync_b.redeem_invite("no-such-code")
        # Caseworkers are appointed by the organisation (its admins), never by a coordinator.
        with pytest.raises(q.QuartierError.Server) as not_appointer:
            await sync_a.set_role(space, vol.person_id, q.Role.CASEWORKER)
        assert not_appointer.value.http_status() == 403
        await sync_a.set_role(space, vol.person_id, q.Role.RESIDENT)
        await sync_a.remove_member(space, vol.person_id)

    asyncio.run(scenario())
    a.close()
    b.close()


def test_a_space_created_offline_is_registered_by_the_next_sync(tmp_path, server_url):
    a = q.QuartierStore.open(str(tmp_path / "a.db"))
    b = q.QuartierStore.open(str(tmp_path / "b.db"))
    sync_a = q.QuartierSync(a, server_url)
    sync_b = q.QuartierSync(b, server_url)
    # Nothing listens on port 9 of loopback: the same account, but the server is out of reach.
    unreachable = q.QuartierSync(a, "http://127.0.0.1:9")

    async def scenario():
        with pytest.raises(q.QuartierError.NotRegistered):
            await sync_a.create_space(space_meta())
        assert a.spaces() == [], "nothing is created before the device is registered"
        coord = await sync_a.register("Koordination")
        shared = await unreachable.create_space(space_meta())
        space = shared.space.id
        assert shared.membership is None
        assert [s.id for s in a.spaces()] == [space] and a.memberships() == []
        a.create_item(q.NewItem(space_id=space, author=coord.person_id, content=post("Offline geschrieben")))
        # Back online: the next sync registers the space and pushes it with its item.
        report = await sync_a.sync_now()
        assert report.pushed == 2
        assert [(m.space_id, m.role) for m in a.memberships()] == [(space, q.Role.COORDINATOR)]
        code = await sync_a.create_invite(space, q.Role.RESIDENT, int(time.time() * 1000) + 3_600_000, 1)
        res = await sync_b.register("Nachbarin")
        await sync_b.redeem_invite(code)
        await sync_b.sync_now()
        assert b.space(space).meta.name["de"] == "Nippes hilft"
        titles = {i.content.title["de"] for i in b.feed(q.FeedQuery(space_id=space, viewer=viewer(res.person_id))).items}
        assert titles == {"Offline geschrieben"}

    asyncio.run(scenario())
    a.close()
    b.close()


def test_sync_errors_and_cancel(store, server_url):
    sync = q.QuartierSync(store, server_url)
    with pytest.raises(q.QuartierError.NotRegistered):
        asyncio.run(sync.sync_now())
    token = q.CancelToken()
    token.cancel()
    assert token.is_cancelled()
    with pytest.raises(q.QuartierError.Cancelled):
        asyncio.run(sync.register("Abgebrochen", token))
    assert store.account() is None, "a cancelled registration stored nothing"
    with pytest.raises(q.QuartierError.Invalid, match="http"):
        q.QuartierSync(store, "ftp://example.org")
    # Nothing listens on port 9 of loopback: Offline.
    offline = q.QuartierSync(store, "http://127.0.0.1:9")
    with pytest.raises(q.QuartierError.Offline) as caught:
        asyncio.run(offline.register())
    assert (caught.value.error_code(), caught.value.http_status(), caught.value.is_retryable()) == ("offline", None, True)


def test_cancel_from_another_thread_while_waiting(store):
    """A call waiting on a server that never answers ends with Cancelled when another thread
    cancels its token (the path Kotlin's invokeOnCancellation / Swift's cancellation handler use)."""
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    sync = q.QuartierSync(store, "http://127.0.0.1:%d" % silent.getsockname()[1])
    token = q.CancelToken()
    threading.Timer(0.5, token.cancel).start()
    with pytest.raises(q.QuartierError.Cancelled):
        asyncio.run(sync.register("Wartend", token))
    silent.close()
