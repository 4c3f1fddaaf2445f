"""Encryption at rest through the bindings: a store opened with the app's 32-byte key
(`open_encrypted`), a wrong key or no key refused with the typed `WrongStoreKey` and the file left
as it was, a rekey, and a plain store encrypted when opened with a key."""

import os

import pytest

from conftest import person, post, q, space_meta, viewer

MARKER = "pelikanmarker"


def files(folder):
    """Every file under `folder`, byte for byte."""
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[path] = f.read()
    return out


def titles(store, space, me):
    return sorted(i.content.title["de"] for i in store.feed(q.FeedQuery(space_id=space, viewer=viewer(me))).items)


def test_open_with_key_wrong_key_and_rekey(tmp_path):
    path = str(tmp_path / "store.db")
    key = os.urandom(32)
    store = q.QuartierStore.open_encrypted(path, key)
    assert store.is_encrypted()
    me = person()
    space = store.create_space(space_meta(), me).id
    store.create_item(q.NewItem(space_id=space, author=me, content=post(f"{MARKER} Hoffest")))
    store.close()

    for text in files(tmp_path).values():
        assert MARKER.encode() not in text

    before = files(tmp_path)
    with pytest.raises(q.QuartierError.WrongStoreKey) as refused:
        q.QuartierStore.open_encrypted(path, os.urandom(32))
    assert refused.value.error_code() == "wrong_store_key"
    assert key.hex() not in str(refused.value)
    with pytest.raises(q.QuartierError.WrongStoreKey):
        q.QuartierStore.open(path)
    with pytest.raises(q.QuartierError.Invalid):
        q.QuartierStore.open_encrypted(path, b"too short")
    assert files(tmp_path) == before, "a refused open changed a file"

    store = q.QuartierStore.open_encrypted(path, key)
    assert titles(store, space, me) == [f"{MARKER} Hoffest"]
    new_key = os.urandom(32)
    store.rekey(new_key)
    store.close()
    with pytest.raises(q.QuartierError.WrongStoreKey):
        q.QuartierStore.open_encrypted(path, key)
    store = q.QuartierStore.open_encrypted(path, new_key)
    assert titles(store, space, me) == [f"{MARKER} Hoffest"]
    store.close()


def test_a_plain_store_is_encrypted_by_opening_it_with_a_key(tmp_path):
    path = str(tmp_path / "store.db")
    store = q.QuartierStore.open(path)
    assert not store.is_encrypted()
    me = person()
    space = store.create_space(space_meta(), me).id
    store.create_item(q.NewItem(space_id=space, author=me, content=post(f"{MARKER} Flohmarkt")))
    store.close()
    assert any(MARKER.encode() in text for text in files(tmp_path).values())

    key = os.urandom(32)
    store = q.QuartierStore.open_encrypted(path, key)
    assert titles(store, space, me) == [f"{MARKER} Flohmarkt"]
    store.close()
    for text in files(tmp_path).values():
        assert MARKER.encode() not in text
