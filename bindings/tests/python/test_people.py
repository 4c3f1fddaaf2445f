"""The people of a space through the bindings: names chosen at registration and changed later,
each space's member list by role (kept by sync, read offline), and invites as QR-code text."""

import asyncio
import time

import pytest

from conftest import q, space_meta


def test_members_are_listed_by_role_with_the_names_they_chose(tmp_path, server_url):
    a = q.QuartierStore.open(str(tmp_path / "a.db"))
    b = q.QuartierStore.open(str(tmp_path / "b.db"))
    sync_a = q.QuartierSync(a, server_url)
    sync_b = q.QuartierSync(b, server_url)

    async def scenario():
        coord = await sync_a.register("Koordination")
        space = (await sync_a.create_space(space_meta())).space.id
        code = await sync_a.create_invite(space, q.Role.RESIDENT, int(time.time() * 1000) + 3_600_000, 1)
        link = q.format_invite_link(q.InviteLink(server=sync_a.server_url(), code=code))
        # The newcomer scans the link: the server to talk to and the code to redeem.
        scanned = q.parse_invite_link(link)
        assert scanned.server == server_url and scanned.code == code
        resident = await sync_b.register("Nachbarin")
        await q.QuartierSync(b, scanned.server).redeem_invite(scanned.code)
        assert b.members(space) == [], "nothing before the first sync"
        await sync_b.sync_now()
        await sync_a.sync_now()
        expected = [
            q.Member(person_id=coord.person_id, display_name="Koordination", role=q.Role.COORDINATOR),
            q.Member(person_id=resident.person_id, display_name="Nachbarin", role=q.Role.RESIDENT),
        ]
        assert a.members(space) == expected
        assert b.members(space) == expected
        assert b.member(space, coord.person_id).display_name == "Koordination"

        # A pseudonym, trimmed; shown here at once, there after the next sync.
        assert await sync_b.set_display_name("  Mondkatze ") == "Mondkatze"
        assert b.member(space, resident.person_id).display_name == "Mondkatze"
        assert a.member(space, resident.person_id).display_name == "Nachbarin"
        await sync_a.sync_now()
        assert a.member(space, resident.person_id).display_name == "Mondkatze"
        # No name at all is allowed too.
        assert await sync_b.set_display_name(None) is None
        await sync_a.sync_now()
        assert a.member(space, resident.person_id).display_name is None

        # A refused name is Invalid, before any request.
        for bad in ["zwei\nZeilen", "x" * 65, "evil\u202egnp.exe"]:
            with pytest.raises(q.QuartierError.Invalid) as refused:
                await sync_b.set_display_name(bad)
            assert refused.value.error_code() == "invalid"
            assert refused.value.http_status() is None

    asyncio.run(scenario())
    # The lists are the stores' own copies: readable with no server call.
    assert [m.role for m in a.members(b.memberships()[0].space_id)] == [q.Role.COORDINATOR, q.Role.RESIDENT]
    a.close()
    b.close()


def test_invite_links_format_and_parse_with_typed_errors():
    link = q.InviteLink(server="https://quartier.example.org", code="0123abcd")
    text = q.format_invite_link(link)
    assert text == "quartier://join?s=https://quartier.example.org&c=0123abcd"
    assert q.parse_invite_link(text) == link
    assert q.parse_invite_link("  QUARTIER://JOIN?" + text[len("quartier://join?"):] + "\n") == link
    for bad in [
        "",
        "https://example.org",
        "quartier://join?c=abc",
        "quartier://join?s=https://a.org",
        "quartier://join?s=ftp://a.org&c=abc",
        "quartier://join?s=https://a.org&c=a%zz",
        "quartier://join?s=https://a.org&c=" + "a" * 600,
    ]:
        with pytest.raises(q.QuartierError.Invalid):
            q.parse_invite_link(bad)
    with pytest.raises(q.QuartierError.Invalid):
        q.format_invite_link(q.InviteLink(server="not a url", code="abc"))
