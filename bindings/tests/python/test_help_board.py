"""The help board through the bindings against a real server: a resident's request on the
board (a live query), two responses, the author chooses one: the contacts reach the two of them
only, the other responder is told, the request leaves every board; the chosen helper closes
it. Steps the flow does not allow come back refused. Run through scripts/test-bindings-python."""

import asyncio
import time

import pytest

from conftest import Recorder, content, q, space_meta, viewer


def request(title):
    return content(title, q.ItemDetails.REQUEST(q.Request(direction=q.RequestDirection.NEED, category="einkauf", state=q.RequestState.OPEN)))


def test_request_responses_agreement_and_done(tmp_path, server_url):
    names = ("coord", "anna", "ben", "vera")
    stores = {n: q.QuartierStore.open(str(tmp_path / f"{n}.db")) for n in names}
    syncs = {n: q.QuartierSync(s, server_url) for n, s in stores.items()}
    anna, ben, vera = stores["anna"], stores["ben"], stores["vera"]

    async def scenario():
        people = {"coord": (await syncs["coord"].register("Koordination")).person_id}
        space = (await syncs["coord"].create_space(space_meta())).space.id
        for name in ("anna", "ben", "vera"):
            code = await syncs["coord"].create_invite(space, q.Role.RESIDENT, int(time.time() * 1000) + 3_600_000, 1)
            people[name] = (await syncs[name].register(name.title())).person_id
            await syncs[name].redeem_invite(code)

        async def sync_all():
            for name in ("anna", "ben", "vera", "coord", "anna", "ben", "vera"):
                await syncs[name].sync_now()

        await sync_all()
        wanted = anna.create_item(q.NewItem(space_id=space, author=people["anna"], content=request("Wer kauft für mich ein?"))).id
        board = Recorder()
        subscription = ben.subscribe(q.LiveQuery.HELP_BOARD(space=space, viewer=viewer(people["ben"], q.Role.RESIDENT)), board)
        await sync_all()
        assert [i.id for i in board.wait_for(lambda r: len(r.items) == 1).items] == [wanted]

        with pytest.raises(q.QuartierError.NotPermitted):
            anna.respond_to_request(wanted, "selbst", "")
        ben.respond_to_request(wanted, "Ich fahre morgen", "Ben: 0171 111")
        vera.respond_to_request(wanted, "Ich auch", "Vera: 0171 222")
        await sync_all()
        status = anna.help_status(wanted)
        assert status.state == q.HelpState.OPEN and status.contact is None
        assert sorted(r.person for r in status.responses) == sorted([people["ben"], people["vera"]])

        anna.agree_to_help(wanted, people["ben"], "Anna: 0221 333")
        await sync_all()
        board.wait_for(lambda r: r.items == [])
        mine = anna.help_status(wanted)
        assert (mine.state, mine.agreed_with, mine.contact) == (q.HelpState.AGREED, people["ben"], "Ben: 0171 111")
        chosen = ben.help_status(wanted)
        assert (chosen.chosen, chosen.contact) == (True, "Anna: 0221 333")
        other = vera.help_status(wanted)
        assert (other.chosen, other.contact) == (False, None)
        uninvolved = stores["coord"].help_status(wanted)
        assert (uninvolved.state, uninvolved.agreed_with, uninvolved.responses) == (q.HelpState.AGREED, None, [])

        vera.close_request(wanted, "")
        await syncs["vera"].sync_now()
        refused = vera.pending_help()
        assert refused[0].refused.startswith("forbidden")
        vera.dismiss_pending_help(refused[0].id)
        assert vera.pending_help() == []
        ben.close_request(wanted, "Erledigt")
        await sync_all()
        assert anna.help_status(wanted).state == q.HelpState.DONE
        subscription.cancel()

    try:
        asyncio.run(scenario())
    finally:
        for store in stores.values():
            store.close()
