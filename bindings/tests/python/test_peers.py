"""Device to device through the bindings, against a real server: two phones registered there, in
one space, both synced (so both hold certificates); a QuartierPeerSession pair exchanging
QR-sized frames in this test's own loop carries a post, which the receiving phone then carries to
the server; the local network (opt-in per space, a listener, meet_at over loopback) with progress
after every frame; relay limits; typed errors. No mDNS here: announcing and browsing would
multicast on the machine's real interfaces (the core tests them in network namespaces)."""

import asyncio
import os
import sys
import threading
import time

import pytest

from conftest import phone, post, q, space_meta


class Progress(q.PeerProgressListener):
    """Keeps every report a local-network session gives, and the threads they came on."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reports = []
        self.threads = set()

    def on_progress(self, report):
        with self.lock:
            self.reports.append(report)
            self.threads.add(threading.get_ident())


class Phones:
    """Two phones of one space: `a` made it (coordinator), `b` joined as a volunteer; both
    synced once."""

    def __init__(self, tmp_path, server_url):
        self.a = q.QuartierStore.open(str(tmp_path / "a.db"))
        self.b = q.QuartierStore.open(str(tmp_path / "b.db"))
        self.sync_a = q.QuartierSync(self.a, server_url)
        self.sync_b = q.QuartierSync(self.b, server_url)

    async def meet_the_server(self):
        self.person_a = (await self.sync_a.register("Anna")).person_id
        self.space = (await self.sync_a.create_space(space_meta())).space.id
        code = await self.sync_a.create_invite(
            self.space, q.Role.VOLUNTEER, int(time.time() * 1000) + 3_600_000, 1
        )
        self.person_b = (await self.sync_b.register("Ben")).person_id
        await self.sync_b.redeem_invite(code)
        await self.sync_a.sync_now()
        await self.sync_b.sync_now()

    def write(self, title, body=""):
        """A post of `a`'s, written offline (not pushed)."""
        return self.a.create_item(
            q.NewItem(space_id=self.space, author=self.person_a, content=post(title, body={"de": body}))
        )

    def has(self, store, item):
        viewer = q.Viewer(person=self.person_b, role=q.Role.VOLUNTEER)
        try:
            return store.item_detail(item.id, viewer).item.content.title == item.content.title
        except q.QuartierError.NotFound:
            return False

    def close(self):
        self.a.close()
        self.b.close()


@pytest.fixture
def phones(tmp_path, server_url):
    p = Phones(tmp_path, server_url)
    asyncio.run(p.meet_the_server())
    yield p
    p.close()


def test_certificates_come_with_a_sync(phones):
    now = int(time.time() * 1000)
    for store, role in ((phones.a, q.Role.COORDINATOR), (phones.b, q.Role.VOLUNTEER)):
        [cert] = store.peer_certificates()
        assert (cert.space, cert.role, cert.valid) == (phones.space, role, True)
        assert cert.issued_at_ms <= now + 60_000 < cert.expires_at_ms
    # Nothing carried for others yet, within the default limits (32 MiB for 14 days).
    assert phones.a.carried_changes() == q.CarriedChanges(changes=0, bytes=0)
    assert phones.a.relay_limits() == q.RelayLimits(max_bytes=32 * 1024 * 1024, max_age_ms=14 * 86_400_000)


def test_a_qr_sized_session_in_our_own_loop_carries_a_post(phones):
    item = phones.write("Hoffest am Samstag", "Wir grillen im Hof. " * 150)  # several QR codes
    assert not phones.has(phones.b, item)
    qr = q.qr_frame_bytes()
    assert qr == 2000 and q.default_frame_bytes() == 262_144
    initiator = q.QuartierPeerSession(phones.a, q.PeerRole.INITIATOR, frame_bytes=qr)
    responder = q.QuartierPeerSession(phones.b, q.PeerRole.RESPONDER, frame_bytes=qr)
    assert responder.first_frame() is None, "the responder waits"

    frame = initiator.first_frame()
    assert frame is not None and initiator.first_frame() is None, "the first frame, once"
    # The transport: here a list of "shown QR codes" alternating between the phones.
    shown = []
    sides = [responder, initiator]
    while frame is not None:
        shown.append(frame)
        assert len(frame) <= qr, len(frame)
        frame = sides[(len(shown) - 1) % 2].receive(frame)
    assert initiator.is_finished() and responder.is_finished()
    assert len(shown) > 4, f"the post took several codes: {len(shown)}"

    got, gave = responder.report(), initiator.report()
    assert got.finished and gave.finished
    assert got.changes_received == 1 and gave.changes_sent == 1, (got, gave)
    assert (got.shared_spaces, got.refused_count, got.refused, got.unsigned_documents) == (1, 0, [], 0)
    assert got.peer_device == phones.a.account().device_id
    assert gave.peer_device == phones.b.account().device_id
    assert got.frames_received + gave.frames_received == len(shown)
    assert got.bytes_received + gave.bytes_received == sum(len(f) for f in shown)
    assert phones.has(phones.b, item)

    # B carries A's post for the server (store-and-forward) until its next sync delivers it.
    assert got.carried == 1 and got.not_carried == 0
    carried = phones.b.carried_changes()
    assert carried.changes == 1 and carried.bytes > 0
    asyncio.run(phones.sync_b.sync_now())
    assert phones.b.carried_changes() == q.CarriedChanges(changes=0, bytes=0)

    # A finished session takes no more frames.
    with pytest.raises(q.QuartierError.Peer) as finished:
        responder.receive(shown[0])
    assert finished.value.error_code() == "protocol"


def meet(initiator_store, responder_store):
    """One QR-sized session between two stores, frames handed across in this loop; the
    responder's and the initiator's reports."""
    initiator = q.QuartierPeerSession(initiator_store, q.PeerRole.INITIATOR, frame_bytes=q.qr_frame_bytes())
    responder = q.QuartierPeerSession(responder_store, q.PeerRole.RESPONDER, frame_bytes=q.qr_frame_bytes())
    frame, turn = initiator.first_frame(), 0
    while frame is not None:
        frame = (responder, initiator)[turn % 2].receive(frame)
        turn += 1
    return responder.report(), initiator.report()


def test_a_phone_on_a_tight_data_plan_fetches_peer_signatures_only_when_turned_on(phones, tmp_path, server_url):
    item = phones.write("Tafel heute offen")
    asyncio.run(phones.sync_a.sync_now())
    # Carla joins with the signatures off: she gets the post, but cannot show it on to Ben.
    carla, sync_c = phone(tmp_path, server_url, "carla")
    try:
        assert carla.peer_signatures(), "on by default"
        carla.set_peer_signatures(False)
        assert not carla.peer_signatures()
        asyncio.run(sync_c.register("Carla"))
        code = asyncio.run(
            phones.sync_a.create_invite(phones.space, q.Role.VOLUNTEER, int(time.time() * 1000) + 3_600_000, 1)
        )
        asyncio.run(sync_c.redeem_invite(code))
        asyncio.run(sync_c.sync_now())
        assert phones.has(carla, item) and not phones.has(phones.b, item)
        got, gave = meet(carla, phones.b)
        assert got.changes_received == 0 and gave.unsigned_documents >= 1, (got, gave)
        assert not phones.has(phones.b, item)
        # Turned on, the next sync fetches them for what she holds; then Ben gets the post.
        carla.set_peer_signatures(True)
        asyncio.run(sync_c.sync_now())
        got, gave = meet(carla, phones.b)
        assert got.changes_received == 1 and gave.unsigned_documents == 0, (got, gave)
        assert phones.has(phones.b, item)
    finally:
        carla.close()


def test_sessions_refuse_what_they_cannot_take(phones, tmp_path, server_url):
    responder = q.QuartierPeerSession(phones.b, q.PeerRole.RESPONDER)
    with pytest.raises(q.QuartierError.Peer) as garbage:
        responder.receive(b"\x07not a frame")
    assert garbage.value.error_code() == "malformed"
    with pytest.raises(q.QuartierError.Invalid):
        q.QuartierPeerSession(phones.a, q.PeerRole.INITIATOR, frame_bytes=-1)

    # Not registered; registered but never synced (no certificate yet).
    fresh = q.QuartierStore.open(str(tmp_path / "fresh.db"))
    with pytest.raises(q.QuartierError.NotRegistered):
        q.QuartierPeerSession(fresh, q.PeerRole.INITIATOR)
    asyncio.run(q.QuartierSync(fresh, server_url).register(None))
    assert fresh.peer_certificates() == []
    with pytest.raises(q.QuartierError.Peer) as uncertified:
        q.QuartierPeerSession(fresh, q.PeerRole.INITIATOR)
    assert uncertified.value.error_code() == "bad_certificate"
    fresh.close()


def test_the_local_network_opt_in_listener_and_meet_at_with_progress(phones):
    item = phones.write("Flohmarkt im Veedel")
    listener = q.QuartierPeerListener(phones.b)
    address = f"127.0.0.1:{listener.port()}"
    assert listener.port() > 0

    async def meet(progress_a=None, progress_b=None):
        return await asyncio.gather(
            listener.meet_next(progress=progress_b),
            q.meet_at(phones.a, address, progress=progress_a),
            return_exceptions=True,
        )

    # No space opted in: the devices share nothing, and nothing moves.
    assert phones.a.nearby_spaces() == []
    served, met = asyncio.run(meet())
    refusals = [r for r in (served, met) if isinstance(r, q.QuartierError.Peer)]
    assert [r.error_code() for r in refusals][:1] == ["bad_certificate"], (served, met)
    assert not phones.has(phones.b, item)

    for store in (phones.a, phones.b):
        store.set_nearby(phones.space, True)
        assert store.nearby_spaces() == [phones.space]
    # B carries nothing for others: its relay limit is 0 bytes.
    limits = q.RelayLimits(max_bytes=0, max_age_ms=86_400_000)
    phones.b.set_relay_limits(limits)
    assert phones.b.relay_limits() == limits

    progress_a, progress_b = Progress(), Progress()
    served, met = asyncio.run(meet(progress_a, progress_b))
    assert not isinstance(served, BaseException), served
    assert not isinstance(met, BaseException), met
    assert served.finished and met.finished
    assert served.changes_received == 1 and met.changes_sent == 1, (served, met)
    assert met.shared_spaces == 1
    assert (served.carried, served.not_carried) == (0, 1), served
    assert phones.b.carried_changes().changes == 0
    assert phones.has(phones.b, item)

    # Progress after every frame received, on library threads; the last is the final report.
    for progress, report in ((progress_a, met), (progress_b, served)):
        counts = [r.frames_received for r in progress.reports]
        assert counts == list(range(1, report.frames_received + 1)), counts
        assert progress.reports[-1] == report
        assert threading.get_ident() not in progress.threads

    # Opting out again: nothing is shared on the local network any more.
    phones.a.set_nearby(phones.space, False)
    assert phones.a.nearby_spaces() == []

    # A wait for the next device ends with its token; a bad address is Invalid.
    token = q.CancelToken()
    token.cancel()
    with pytest.raises(q.QuartierError.Cancelled):
        asyncio.run(listener.meet_next(cancel=token))
    with pytest.raises(q.QuartierError.Invalid):
        asyncio.run(q.meet_at(phones.a, "nebenan"))
    with pytest.raises(q.QuartierError.Invalid):
        phones.b.set_relay_limits(q.RelayLimits(max_bytes=-1, max_age_ms=0))


def test_joining_offline_through_the_bindings(phones, tmp_path, server_url):
    """A coordinator's phone makes an invite; a new phone takes it, meets that phone in QR-sized
    frames as a guest (no account yet) and gets the public post; it writes under its
    provisional person id; at its first connection the server confirms the invite and the post
    goes up."""
    public = phones.write("Willkommen im Veedel")
    invite = phones.a.make_offline_invite(phones.space, q.Role.RESIDENT, 3_600_000)
    assert invite.startswith("quartier-offline:") and len(invite) < 1_200
    with pytest.raises(q.QuartierError.NotPermitted):
        phones.b.make_offline_invite(phones.space, q.Role.RESIDENT, 3_600_000)

    newcomer = q.QuartierStore.open(str(tmp_path / "newcomer.db"))
    try:
        info = newcomer.accept_offline_invite(invite)
        assert (info.space, info.role) == (phones.space, q.Role.RESIDENT)
        assert newcomer.offline_invites() == [info]
        with pytest.raises(q.QuartierError.Invalid):
            newcomer.accept_offline_invite("quartier-offline:garbage")

        guest = q.QuartierPeerSession(newcomer, q.PeerRole.INITIATOR, frame_bytes=q.qr_frame_bytes())
        host = q.QuartierPeerSession(phones.a, q.PeerRole.RESPONDER, frame_bytes=q.qr_frame_bytes())
        frame, sides, n = guest.first_frame(), [host, guest], 0
        while frame is not None:
            frame = sides[n % 2].receive(frame)
            n += 1
        assert guest.report().changes_received >= 1 and host.report().changes_received == 0
        viewer = q.Viewer(person=phones.person_a, role=q.Role.RESIDENT)
        assert newcomer.item_detail(public.id, viewer).item.content.title == public.content.title

        person = newcomer.provisional_person()
        mine = newcomer.create_item(q.NewItem(space_id=phones.space, author=person, content=post("Hallo, ich bin neu")))

        sync = q.QuartierSync(newcomer, server_url)

        async def first_connection():
            registered = await sync.register("Neu")
            assert registered.person_id == person, "the server took the id it wrote under"
            memberships = await sync.confirm_offline_invites()
            assert [m.role for m in memberships] == [q.Role.RESIDENT]
            await sync.sync_now()
            await phones.sync_a.sync_now()

        asyncio.run(first_connection())
        assert newcomer.offline_invites() == []
        coordinator = q.Viewer(person=phones.person_a, role=q.Role.COORDINATOR)
        assert phones.a.item_detail(mine.id, coordinator).item.content.title == mine.content.title
    finally:
        newcomer.close()


CHILD = r'''
import asyncio, os, sys, time
sys.path.insert(0, os.environ["QUARTIER_BINDINGS_DIR"])
import quartier as q
mode, db, space = sys.argv[1], sys.argv[2], sys.argv[3]
store = q.QuartierStore.open(db)
store.set_nearby(space, True)
if mode == "listen":
    listener = q.QuartierPeerListener(store)
    assert listener.announce(sys.argv[4])
    print("LISTENING", listener.port(), flush=True)
    time.sleep(float(sys.argv[5]))
    listener.withdraw()
else:
    found = asyncio.run(q.browse_nearby(store, 10_000))
    print("FOUND", " ".join(a for d in found for a in d.addresses), flush=True)
store.close()
q.shutdown_runtime()
'''


def test_discovery_finds_a_nearby_device_in_two_network_namespaces(tmp_path):
    """mDNS through the bindings, where it may multicast: two network namespaces joined by a
    veth pair (root only; skipped elsewhere). A phone announces its listener for an opted-in
    space; the other finds it by the space's tag, at its address and port."""
    import subprocess
    import uuid

    def ip(*args):
        return subprocess.run(["ip", *args], capture_output=True).returncode == 0

    names = ("qpy-a", "qpy-b")
    for ns in names:
        ip("netns", "del", ns)
    steps = [
        ("netns", "add", "qpy-a"), ("netns", "add", "qpy-b"),
        ("link", "add", "qpy-va", "type", "veth", "peer", "name", "qpy-vb"),
        ("link", "set", "qpy-va", "netns", "qpy-a"), ("link", "set", "qpy-vb", "netns", "qpy-b"),
        ("-n", "qpy-a", "addr", "add", "10.79.0.1/24", "dev", "qpy-va"),
        ("-n", "qpy-b", "addr", "add", "10.79.0.2/24", "dev", "qpy-vb"),
        ("-n", "qpy-a", "link", "set", "qpy-va", "up", "multicast", "on"),
        ("-n", "qpy-b", "link", "set", "qpy-vb", "up", "multicast", "on"),
    ]
    try:
        if not all(ip(*step) for step in steps):
            pytest.skip("network namespaces are not available here (not root?)")
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        space = str(uuid.uuid4())
        env = dict(os.environ)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", "qpy-a", sys.executable, str(script), "listen",
             str(tmp_path / "a.db"), space, "10.79.0.1", "15"],
            stdout=subprocess.PIPE, text=True, env=env,
        )
        line = listener.stdout.readline().split()
        assert line[:1] == ["LISTENING"], line
        port = line[1]
        browser = subprocess.run(
            ["ip", "netns", "exec", "qpy-b", sys.executable, str(script), "browse",
             str(tmp_path / "b.db"), space],
            capture_output=True, text=True, env=env, timeout=60,
        )
        assert browser.returncode == 0, browser.stderr
        found = browser.stdout.split("FOUND", 1)[1].split()
        assert found == [f"10.79.0.1:{port}"], browser.stdout
        # A phone of another space finds nothing.
        other = subprocess.run(
            ["ip", "netns", "exec", "qpy-b", sys.executable, str(script), "browse",
             str(tmp_path / "c.db"), str(uuid.uuid4())],
            capture_output=True, text=True, env=env, timeout=60,
        )
        assert other.stdout.split("FOUND", 1)[1].split() == [], other.stdout
        listener.kill()
        listener.wait()
    finally:
        for ns in names:
            ip("netns", "del", ns)
