"""Invites as a coordinator manages them: listed without their codes, withdrawn, and then
redeeming nothing."""

import asyncio
import time

from conftest import q, space_meta


def test_a_coordinator_lists_and_withdraws_invites(tmp_path, server_url):
    a = q.QuartierStore.open(str(tmp_path / "a.db"))
    b = q.QuartierStore.open(str(tmp_path / "b.db"))
    sync_a = q.QuartierSync(a, server_url)
    sync_b = q.QuartierSync(b, server_url)

    async def scenario():
        coord = await sync_a.register("Koordination")
        space = (await sync_a.create_space(space_meta())).space.id
        expires = int(time.time() * 1000) + 3_600_000
        code = await sync_a.create_invite(space, q.Role.VOLUNTEER, expires, 20)
        invites = await sync_a.list_invites(space)
        assert [(i.role, i.max_uses, i.uses, i.expires_at_ms, i.created_by) for i in invites] == [
            (q.Role.VOLUNTEER, 20, 0, expires, coord.person_id)
        ]
        assert code not in repr(invites), "the code itself is never listed"
        await sync_a.revoke_invite(space, invites[0].id)
        assert await sync_a.list_invites(space) == []
        await sync_b.register("Zu spät")
        try:
            await sync_b.redeem_invite(code)
            raise AssertionError("a withdrawn invite let someone in")
        except q.QuartierError as e:
            assert e.http_status() == 404, e

    asyncio.run(scenario())
    a.close()
    b.close()
