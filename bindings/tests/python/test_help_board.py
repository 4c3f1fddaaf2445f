"""The help board and notifications through the bindings against a real server: a resident's
request on the board (a live query), two responses, the author chooses one: the contacts reach
the two of them only, the other responder is told, the request leaves every board; the chosen
helper closes it. Steps the flow does not allow come back refused. Each step is a notification
(a live query) for the person concerned, once; a followed tag too. Run through
scripts/test-bindings-python."""

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
        notified = Recorder()
        notifications = anna.subscribe(q.LiveQuery.NOTIFICATIONS(), notified)
        notified.wait_for(lambda r: r.notifications == [])
        anna.follow(q.FollowTarget.TAG(tag="Flohmarkt"))
        assert anna.follows() == [q.FollowTarget.TAG(tag="flohmarkt")]
        vera.set_notifications_enabled(q.NotificationKind.NOT_CHOSEN, False)
        assert vera.disabled_notifications() == [q.NotificationKind.NOT_CHOSEN]
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

        got = notified.wait_for(lambda r: len(r.notifications) == 2).notifications
        assert sorted(n.person for n in got) == sorted([people["ben"], people["vera"]])
        assert {n.kind for n in got} == {q.NotificationKind.RESPONSE} and not any(n.read for n in got)
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

        assert [n.kind for n in ben.notifications(False, 10)] == [q.NotificationKind.AGREED]
        assert vera.notifications(False, 10) == [], "Vera turned `not chosen` off"
        tagged = content("Flohmarkt im Hof", q.ItemDetails.POST(q.Post(post_type=q.PostType.NEWS)), tags=["flohmarkt"])
        stores["coord"].create_item(q.NewItem(space_id=space, author=people["coord"], content=tagged))
        await sync_all()
        await sync_all()
        latest = notified.wait_for(lambda r: len(r.notifications) == 3).notifications[0]
        assert latest.kind == q.NotificationKind.FOLLOWED and latest.person == people["coord"]
        assert anna.unread_notifications() == 3
        anna.mark_notifications_read([latest.id])
        assert anna.unread_notifications() == 2
        anna.mark_notifications_read([])
        notified.wait_for(lambda r: all(n.read for n in r.notifications))
        assert anna.check_reminders() == 0
        notifications.cancel()

    try:
        asyncio.run(scenario())
    finally:
        for store in stores.values():
            store.close()
