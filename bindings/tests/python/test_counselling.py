"""Counselling through the bindings, against a real server: an organisation admin appoints a
caseworker and a coordinator puts her into a team; a resident routes by topic and postcode,
opens a conversation offline and writes; the caseworker (and her linked tablet) receive it
through live listeners, answer, note and propose an appointment; the resident sees it live;
a photo sent encrypted and opened by the caseworker; closing, a key backup restored on a new
phone, which locks the lost one out; erasure, and the typed errors on the way."""

import asyncio
import os
import subprocess
import time
import uuid

import pytest

from conftest import Recorder, q, space_meta

PASSPHRASE = "Kastanienbaum im Hinterhof 7"


def grant_org_admin(person_id):
    """What the organisation's operator does: `quartier-server admin grant-org-admin`."""
    binary = os.environ.get("QUARTIER_SERVER_BIN")
    data = os.environ.get("QUARTIER_SERVER_DATA")
    if not binary or not data:
        pytest.skip("QUARTIER_SERVER_BIN / QUARTIER_SERVER_DATA not set: run scripts/test-bindings-python")
    subprocess.run([binary, "admin", "--data", data, "grant-org-admin", person_id], check=True, capture_output=True)


def texts(records):
    """The texts of messages and notes, in order."""
    out = []
    for r in records:
        if r.body is not None and (r.body.is_MESSAGE() or r.body.is_NOTE()):
            out.append(r.body.text)
    return out


def counselling(result):
    assert result.is_COUNSELLING(), result
    return result.records


def test_a_resident_and_a_team_counsel_through_the_bindings(tmp_path, server_url):
    stores = {n: q.QuartierStore.open(str(tmp_path / f"{n}.db")) for n in ["coord", "anna", "tablet", "resident", "phone"]}
    syncs = {n: q.QuartierSync(s, server_url) for n, s in stores.items()}
    coord, anna, tablet, resident, phone = (stores[n] for n in ["coord", "anna", "tablet", "resident", "phone"])
    subscriptions = []

    def watch(store, channel):
        recorder = Recorder()
        subscriptions.append(store.subscribe_counselling(channel, recorder))
        return recorder

    async def scenario():
        # The coordinator's space; as organisation admin she appoints a caseworker.
        coordinator = await syncs["coord"].register("Koordination")
        space = (await syncs["coord"].create_space(space_meta())).space.id
        grant_org_admin(coordinator.person_id)
        expires = int(time.time() * 1000) + 3_600_000
        worker_code = await syncs["coord"].create_invite(space, q.Role.CASEWORKER, expires, 1)
        resident_code = await syncs["coord"].create_invite(space, q.Role.RESIDENT, expires, 1)
        worker = await syncs["anna"].register("Anna (Beratung)")
        assert (await syncs["anna"].redeem_invite(worker_code)).role == q.Role.CASEWORKER
        await syncs["resident"].register("Nachbarin")
        await syncs["resident"].redeem_invite(resident_code)

        # Teams: a general debt team and one for postcodes 507…; Anna into the local one.
        def settings(name, postcodes, retention_days):
            return q.TeamSettings(name=name, topic="debt", postcodes=postcodes, retention_days=retention_days)

        general = await syncs["coord"].create_counselling_team(space, settings("Schuldnerberatung", [], 90))
        local = await syncs["coord"].create_counselling_team(space, settings("Schuldnerberatung Nippes", ["507"], None))
        assert (local.topic, local.postcodes, local.retention_days) == ("debt", ["507"], None)
        renamed = await syncs["coord"].update_counselling_team(space, local.id, settings("Beratung Nippes", ["507"], 30))
        assert (renamed.id, renamed.name, renamed.retention_days) == (local.id, "Beratung Nippes", 30)
        members = await syncs["coord"].add_team_member(space, local.id, worker.person_id)
        assert (members.team, members.caseworkers) == (local.id, [worker.person_id])
        for days in [0, -1]:
            with pytest.raises(q.QuartierError.Server) as refused:
                await syncs["coord"].create_counselling_team(space, settings("Falsch", [], days))
            assert refused.value.http_status() == 400

        # Anna's tablet: a device of the same person, linked with a one-use code.
        link = await syncs["anna"].create_device_link()
        assert len(link.code) > 0 and link.expires_at_ms > int(time.time() * 1000)
        assert (await syncs["tablet"].register_linked(link.code)).person_id == worker.person_id
        await syncs["anna"].sync_now()
        await syncs["tablet"].sync_now()
        kinds = {(c.id, c.kind) for c in anna.counselling_channels()}
        assert kinds == {(local.id, q.ChannelKind.TEAM_NOTES)}, "the team's notes channel"

        # The resident routes by topic and postcode and writes offline.
        teams = await syncs["resident"].counselling_teams(space)
        assert {t.id for t in teams} == {general.id, local.id}
        assert q.route_counselling(teams, "debt", "50733").id == local.id
        assert q.route_counselling(teams, "debt", "10115").id == general.id
        assert q.route_counselling(teams, "debt").id == general.id
        assert q.route_counselling(teams, "family", "50733") is None
        conversation = resident.open_conversation(space, local.id)
        mine = watch(resident, conversation)
        resident.send_counselling_message(conversation, "Ich habe Schulden beim Vermieter")
        first = counselling(mine.wait_for(lambda r: len(counselling(r)) == 1))
        assert first[0].state == q.RecordState.QUEUED() and first[0].mine
        assert resident.counselling_channels()[0].unsent == 1
        await syncs["resident"].sync_now()
        mine.wait_for(lambda r: counselling(r)[0].state == q.RecordState.DELIVERED())

        # Anna receives it live (subscribed before her sync), on her phone and her tablet.
        theirs = watch(anna, conversation)
        on_tablet = watch(tablet, conversation)
        channels = Recorder()
        subscriptions.append(anna.subscribe_counselling_channels(channels))
        assert counselling(theirs.wait_for(lambda r: True)) == [], "not on this device yet"
        await syncs["anna"].sync_now()
        await syncs["tablet"].sync_now()
        got = counselling(theirs.wait_for(lambda r: texts(counselling(r)) == ["Ich habe Schulden beim Vermieter"]))
        assert got[0].from_side == q.Side.RESIDENT and not got[0].mine
        on_tablet.wait_for(lambda r: texts(counselling(r)) == ["Ich habe Schulden beim Vermieter"])
        channels.wait_for(lambda r: r.is_COUNSELLING_CHANNELS() and conversation in [c.id for c in r.channels])

        # She answers, notes and proposes an appointment.
        anna.send_counselling_message(conversation, "Bringen Sie den Brief mit")
        anna.write_case_note(local.id, conversation, "Mietschulden, etwa 1200 EUR")
        starts = int(time.time() * 1000) + 86_400_000
        appointment = str(uuid.uuid4())
        place = q.AppointmentPlace.IN_PERSON(address="Neusser Str. 1")
        anna.send_counselling(conversation, q.Body.APPOINTMENT(appointment, starts, 45, place, False))
        with pytest.raises(q.QuartierError.Invalid, match="at least a minute"):
            anna.send_counselling(conversation, q.Body.APPOINTMENT(appointment, starts, 0, place, False))
        await syncs["anna"].sync_now()
        notes = texts(anna.counselling_records(local.id))
        assert notes == ["Mietschulden, etwa 1200 EUR"]

        # The resident sees the answer and the appointment live; never the note.
        await syncs["resident"].sync_now()
        seen = counselling(mine.wait_for(lambda r: len(counselling(r)) == 3))
        assert texts(seen) == ["Ich habe Schulden beim Vermieter", "Bringen Sie den Brief mit"]
        assert seen[1].from_side == q.Side.TEAM
        booked = seen[2].body
        assert booked.is_APPOINTMENT() and (booked.appointment, booked.starts_at_ms, booked.minutes) == (
            appointment,
            starts,
            45,
        )
        assert booked.place == place
        assert [c.kind for c in resident.counselling_channels()] == [q.ChannelKind.CONVERSATION]
        with pytest.raises(q.QuartierError.NotFound):
            resident.counselling_records(local.id)

        # A photo of a letter, encrypted on the phone with a key of its own, goes with a
        # message; Anna fetches and opens it (the library writes no plaintext of it to disk).
        letter = b"Bescheid vom Jobcenter " * 20_000
        resident.send_counselling_files(
            conversation, "Hier der Brief", [q.NewAttachment(bytes=letter, mime="image/jpeg")]
        )
        await syncs["resident"].sync_now()
        await syncs["anna"].sync_now()
        with_file = [r for r in anna.counselling_records(conversation) if r.body is not None and r.body.is_MESSAGE() and r.body.attachments]
        assert len(with_file) == 1 and with_file[0].body.text == "Hier der Brief"
        file = with_file[0].body.attachments[0]
        assert (file.size, file.mime) == (len(letter), "image/jpeg")
        assert anna.counselling_attachment(conversation, file) is None, "not fetched yet"
        assert await syncs["anna"].fetch_counselling_attachment(conversation, file) == letter
        assert anna.counselling_attachment(conversation, file) == letter, "kept, opened offline"
        with pytest.raises(q.QuartierError.Invalid):
            resident.send_counselling_files(conversation, "leer", [])

        # Closed by the resident; the team sees when.
        resident.close_conversation(conversation)
        await syncs["resident"].sync_now()
        await syncs["anna"].sync_now()
        closed = [c for c in anna.counselling_channels() if c.id == conversation]
        assert closed[0].closed_at_ms is not None
        theirs.wait_for(lambda r: any(x.body is not None and x.body.is_CLOSED() for x in counselling(r)))

        # A key backup, restored on a new phone with the passphrase: the history reads.
        backup = await syncs["resident"].upload_key_backup(PASSPHRASE)
        assert resident.key_backup_id() == backup.backup_id and len(backup.backup_id) == 32
        await syncs["phone"].register("Neues Telefon")
        with pytest.raises(q.QuartierError.Counselling) as wrong:
            await syncs["phone"].restore_key_backup(backup.backup_id, "falsche Passphrase")
        assert wrong.value.error_code() == "wrong_passphrase"
        assert phone.counselling_channels() == [], "nothing stored"
        with pytest.raises(q.QuartierError.Invalid):
            await syncs["phone"].restore_key_backup("kein Code", PASSPHRASE)
        assert await syncs["phone"].restore_key_backup(backup.backup_id, PASSPHRASE) == 1
        await syncs["phone"].sync_now()
        assert texts(phone.counselling_records(conversation)) == [
            "Ich habe Schulden beim Vermieter",
            "Bringen Sie den Brief mit",
            "Hier der Brief",
        ]

        # The old phone is lost: the new one locks it out, and the old one deletes the
        # conversation at its next sync.
        phone.lock_out_other_devices(conversation)
        await syncs["phone"].sync_now()
        await syncs["resident"].sync_now()
        mine.wait_for(lambda r: counselling(r) == [])
        assert resident.counselling_channels() == []

        # Erased by the resident (the new phone): gone here at once, from the team at its next
        # sync.
        phone.erase_conversation(conversation)
        assert phone.counselling_channels() == []
        await syncs["phone"].sync_now()
        await syncs["anna"].sync_now()
        theirs.wait_for(lambda r: counselling(r) == [])
        assert conversation not in [c.id for c in anna.counselling_channels()]

        # Ids are UUID strings: anything else is Invalid while crossing.
        with pytest.raises(q.QuartierError.Invalid, match="not a UUID"):
            resident.send_counselling_message("kein-uuid", "Hallo")
        with pytest.raises(q.QuartierError.NotFound):
            resident.send_counselling_message(str(uuid.uuid4()), "Hallo")

    try:
        asyncio.run(scenario())
    finally:
        for s in subscriptions:
            s.cancel()
        for s in stores.values():
            s.close()
