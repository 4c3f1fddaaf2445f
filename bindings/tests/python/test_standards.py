"""Standards and the printed guide through the bindings (docs/standards.md): GeoJSON, iCalendar,
HSDS and vCard out and back in (a second import updates instead of duplicating, a bad file is a
typed error that changes nothing), the guide as PDF and HTML, and a member's secret calendar
feed fetched from a real server. Run through scripts/test-bindings-python."""

import asyncio
import datetime
import json
import time
import urllib.error
import urllib.request

import pytest

from conftest import content, person, q, space_meta, viewer


def offer(title, phone):
    return content(title, q.ItemDetails.OFFER(q.Offer(
        organization=q.Organization(name="Caritas Köln"),
        schedules=[q.OpeningRule(rrule="FREQ=WEEKLY;BYDAY=MO,WE", opens="10:00", closes="12:00", valid_from="2026-01-01")],
        contacts=[q.Contact(name="Frau Yilmaz", phone=phone)])))


def test_standards_round_trip_between_two_stores(tmp_path):
    me = person()
    one = q.QuartierStore.open(str(tmp_path / "one.db"))
    two = q.QuartierStore.open(str(tmp_path / "two.db"))
    space_one = one.create_space(space_meta(), me).id
    space_two = two.create_space(space_meta(), me).id
    one.create_item(q.NewItem(space_id=space_one, author=me, content=offer("Sozialberatung", "+49 221 555 0101")))
    one.create_item(q.NewItem(space_id=space_one, author=me, content=content(
        "Bücherschrank", q.ItemDetails.PLACE(q.Place(category="books")),
        location=q.Location(lat=50.9612, lon=6.9503, source=q.PositionSource.MANUAL))))
    seen = viewer(me)

    geo = one.export_geojson(space_one)
    assert [f["properties"].get("title:de") for f in json.loads(geo.bytes)["features"]] == ["Bücherschrank"]
    hsds = one.export_hsds(space_one, "de")
    tables = one.export_hsds_tables(space_one, "de")
    assert "services.csv" in tables.files and "datapackage.json" in tables.files
    ics = one.export_icalendar(space_one)
    assert ics.bytes.startswith(b"BEGIN:VCALENDAR\r\n") and b"Sozialberatung" in ics.bytes

    first = two.import_hsds(space_two, me, hsds.bytes, "de")
    assert len(first.created) == 1 and first.skipped == []
    again = two.import_hsds_tables(space_two, me, tables.files, "de")
    assert again.created == [] and again.unchanged == first.created, again
    assert len(two.import_geojson(space_two, me, geo.bytes, "de").created) == 1
    copy = two.item_detail(first.created[0], seen).item
    assert copy.content.title == {"de": "Sozialberatung"}
    assert copy.content.details[0].schedules[0].rrule == "FREQ=WEEKLY;BYDAY=MO,WE"

    cards = two.offer_vcards(first.created[0], seen)
    read = q.read_vcards(cards.encode())
    assert [c.phone for c in read.contacts] == ["+49 221 555 0101"]

    before = len(two.feed(q.FeedQuery(space_id=space_two, viewer=seen)).items)
    for bad in (b"\xff\xfe", b"{", b"[" * 100_000):
        with pytest.raises(q.QuartierError.MalformedInput):
            two.import_geojson(space_two, me, bad, "de")
    with pytest.raises(q.QuartierError.MalformedInput):
        two.import_icalendar(space_two, me, b"BEGIN:VCALENDAR\r\n" + b"BEGIN:VEVENT\r\n" * 50, "de")
    assert len(two.feed(q.FeedQuery(space_id=space_two, viewer=seen)).items) == before

    today = datetime.date.today()
    monday = today - datetime.timedelta(days=today.weekday())
    guide = two.make_guide(space_two, q.GuideSpec(
        language="de", first_day=monday.isoformat(), last_day=(monday + datetime.timedelta(days=13)).isoformat(),
        link_template="https://quartier.example/i/{item}", paper=q.GuidePaper.A4_BOOKLET,
        large_print=False, easy_language=False,
        phone_numbers=[q.GuidePhoneNumber(label={"de": "Notruf"}, number="112")]))
    assert guide.pdf.startswith(b"%PDF") and guide.pages >= 1 and guide.offers_printed == 1
    assert 'lang="de"' in guide.html and "Sozialberatung" in guide.html
    with pytest.raises(q.QuartierError.Invalid):
        two.make_guide(space_two, q.GuideSpec(
            language="de", first_day=monday.isoformat(), last_day=monday.isoformat(),
            link_template="ftp://nope", paper=q.GuidePaper.A3_POSTER,
            large_print=True, easy_language=False, phone_numbers=[]))


def test_calendar_feed_from_a_real_server(tmp_path, server_url):
    store = q.QuartierStore.open(str(tmp_path / "coord.db"))
    sync = q.QuartierSync(store, server_url)

    async def scenario():
        me = (await sync.register("Koordination")).person_id
        space = (await sync.create_space(space_meta())).space.id
        start = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
        store.create_item(q.NewItem(space_id=space, author=me, content=content(
            "Nachbarschaftscafé", q.ItemDetails.EVENT(q.Event(timing=q.EventTiming(
                start=f"{start}T15:00:00", end=f"{start}T17:00:00", time_zone="Europe/Berlin"))))))
        await sync.sync_now()
        url = await sync.renew_calendar_feed(space)
        body = urllib.request.urlopen(url, timeout=30).read().decode()
        assert "Nachbarschaftscaf" in body and body.startswith("BEGIN:VCALENDAR")
        await sync.end_calendar_feed(space)
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(url, timeout=30)
        assert gone.value.code == 404

    asyncio.run(scenario())
