"""Media through the bindings: a photo imported (metadata stripped, preview and thumbnail made),
put on a place, uploaded by the transfer queue, and fetched by a second device through a real
server — thumbnails first, the original held back on a metered link until asked for."""

import asyncio
import struct
import time
import zlib

import pytest

from conftest import content, person, q, space_meta, viewer

SECRET = b"GPSLatitude=50.9652;Serial=CAM-0042"


def png(width, height, text_chunk):
    """A gradient PNG with a tEXt chunk, written with the standard library only."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes((x * 255 // width) for x in range(width) for _ in range(3))
    raw = b"".join(b"\x00" + bytes((b + y) % 256 for b in row) for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"tEXt", b"Comment\x00" + text_chunk)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


class Transfers(q.TransferProgressListener):
    def __init__(self):
        self.events = []

    def on_transfer(self, event):
        self.events.append(event)


def test_import_strips_metadata_and_makes_variants(store):
    imported = store.import_media_bytes(png(1600, 1200, SECRET))
    ref = imported.reference
    assert ref.mime_type == "image/png" and (ref.width, ref.height) == (1600, 1200)
    assert ref.preview is not None and max(ref.preview.width, ref.preview.height) <= 1280
    assert ref.thumbnail is not None and max(ref.thumbnail.width, ref.thumbnail.height) <= 256
    assert [m.variant for m in imported.stored] == [q.MediaVariant.ORIGINAL, q.MediaVariant.PREVIEW, q.MediaVariant.THUMBNAIL]
    for media in imported.stored:
        data = store.read_media(media.hash)
        assert SECRET not in data, f"metadata survived in the {media.variant}"
        assert len(data) == media.size and not media.on_server
    assert store.media_file(ref.hash).endswith(ref.hash)
    assert store.media_info(ref.hash).present
    # Kept as it came when asked: the same content is one file, the bytes carry the chunk.
    kept = store.import_media_bytes(png(64, 48, SECRET), q.ImportOptions(keep_metadata=True, pinned=True))
    assert SECRET in store.read_media(kept.reference.hash) and kept.stored[0].pinned


def test_media_errors_are_typed(store):
    with pytest.raises(q.QuartierError.Media, match="unsupported"):
        store.import_media_bytes(b"plain text, not a photo")
    truncated = png(400, 300, b"x")[:600]
    with pytest.raises(q.QuartierError.Media):
        store.import_media_bytes(truncated)
    with pytest.raises(q.QuartierError.Invalid):
        store.media_file("../../etc/passwd")
    with pytest.raises(q.QuartierError.NotFound):
        store.media_file("0" * 64)
    with pytest.raises(q.QuartierError.Media):
        store.import_media_file("/no/such/file.jpg")


def test_photo_travels_to_a_second_device(tmp_path, server_url):
    a = q.QuartierStore.open(str(tmp_path / "a.db"))
    b = q.QuartierStore.open(str(tmp_path / "b.db"))
    sync_a = q.QuartierSync(a, server_url)
    sync_b = q.QuartierSync(b, server_url)

    async def scenario():
        coord = await sync_a.register("Koordination")
        space = (await sync_a.create_space(space_meta())).space.id
        imported = a.import_media_bytes(png(1600, 1200, SECRET))
        ref = imported.reference
        ref.alt_text = {"de": "Rampe am Eingang des Cafés"}
        a.create_item(q.NewItem(space_id=space, author=coord.person_id, content=content(
            "Nachbarschaftscafé", q.ItemDetails.PLACE(q.Place(category="cafe")),
            location=q.Location(lat=50.9652, lon=6.9571, source=q.PositionSource.MANUAL),
            media=[ref])))
        await sync_a.sync_now()
        up = Transfers()
        sent = await sync_a.transfer_media(up)
        # Thumbnail first, then preview, then the original: others see something soonest.
        hashes = [ref.thumbnail.hash, ref.preview.hash, ref.hash]
        assert sent.uploaded == hashes and not sent.failed
        assert [e.hash for e in up.events if e.finished] == hashes
        assert all(a.media_info(h).on_server for h in hashes)

        code = await sync_a.create_invite(space, q.Role.RESIDENT, int(time.time() * 1000) + 3_600_000, 1)
        resident = await sync_b.register("Nachbarin")
        await sync_b.redeem_invite(code)
        await sync_b.sync_now()
        [place] = b.feed(q.FeedQuery(space_id=space, viewer=viewer(resident.person_id, q.Role.RESIDENT))).items
        assert place.content.media[0].alt_text == {"de": "Rampe am Eingang des Cafés"}

        # Mobile data: previews and thumbnails move, the original waits.
        sync_b.set_transfer_policy(q.TransferPolicy(metered=True))
        assert sync_b.transfer_policy().metered
        got = await sync_b.transfer_media()
        assert got.downloaded == hashes[:2] and got.deferred == 1
        with pytest.raises(q.QuartierError.NotFound):
            b.media_file(ref.hash)
        # The app shows the photo full size: fetched whatever the policy, byte-identical.
        down = Transfers()
        path = await sync_b.fetch_media(ref.hash, down)
        with open(path, "rb") as f:
            assert f.read() == a.read_media(ref.hash)
        assert down.events and down.events[-1].finished
        assert down.events[-1].direction == q.TransferDirection.DOWNLOAD
        # Nothing left to move; a cancelled run stops before it starts.
        again = await sync_b.transfer_media()
        assert again.downloaded == [] and again.deferred == 0
        token = q.CancelToken()
        token.cancel()
        with pytest.raises(q.QuartierError.Cancelled):
            await sync_b.transfer_media(None, token)
        b.set_media_budget(0)
        evicted = b.evict_media()
        assert evicted.present_bytes == 0 and b.media_budget() == 0
        assert not b.media_info(ref.hash).present

    asyncio.run(scenario())
    a.close()
    b.close()
