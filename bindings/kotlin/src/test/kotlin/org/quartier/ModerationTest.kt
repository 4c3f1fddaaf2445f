package org.quartier

import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.io.TempDir
import org.quartier.flow.helpBoardFlow
import org.quartier.flow.moderationQueueFlow
import org.quartier.flow.notificationsFlow
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * Moderation from Kotlin against a real server: a resident reports a post, the coordinator's
 * [moderationQueueFlow] shows it with the reporter, the coordinator hides it and it leaves the
 * other resident's feed after a sync (its author still sees it, with the note); a resident's
 * attempt to moderate is `NotPermitted`; a mute hides a person on this phone only. The help
 * board: a request on [helpBoardFlow], a response, the author's agreement sharing the contacts
 * between the two, the request leaving the board.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ModerationTest {
    private lateinit var server: ServerProcess

    @TempDir
    lateinit var dir: Path

    @BeforeAll
    fun startServer() {
        server = ServerProcess.start()
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    private fun titles(store: QuartierStore, space: String, person: String) =
        store.feed(FeedQuery(space, Viewer(person, Role.RESIDENT))).items.map { it.content.title["de"] }

    @Test
    fun `a report reaches the queue flow, a hide leaves the other feeds, a mute stays mine`() = runBlocking<Unit> {
        val names = listOf("coord", "anna", "ben")
        val stores = names.associateWith { QuartierStore.open(dir.resolve("$it.db").toString()) }
        val syncs = names.associateWith { QuartierSync(stores.getValue(it), server.url) }
        try {
            val coord = stores.getValue("coord")
            val anna = stores.getValue("anna")
            val ben = stores.getValue("ben")
            val people = mutableMapOf("coord" to syncs.getValue("coord").register("Koordination").personId)
            val space = syncs.getValue("coord").createSpace(Fixtures.berlinMeta).space.id
            for (name in listOf("anna", "ben")) {
                val code = syncs.getValue("coord").createInvite(space, Role.RESIDENT, System.currentTimeMillis() + 3_600_000, 1)
                people[name] = syncs.getValue(name).register(name).personId
                syncs.getValue(name).redeemInvite(code)
            }
            suspend fun syncAll() = listOf("anna", "ben", "coord", "anna", "ben").forEach { syncs.getValue(it).syncNow() }
            syncAll()
            val spam = anna.createItem(Fixtures.post(space, people.getValue("anna"), "Billige Uhren")).id
            syncAll()
            assertEquals(listOf("Billige Uhren"), titles(ben, space, people.getValue("ben")))

            val reported = async { withTimeout(30_000) { coord.moderationQueueFlow(space).first { it.isNotEmpty() } } }
            ben.reportItem(spam, ReportReason.SPAM, "Werbung")
            syncs.getValue("ben").syncNow()
            syncs.getValue("coord").syncNow()
            val entry = reported.await().single()
            assertEquals(spam, entry.item)
            assertEquals(people["anna"], entry.author)
            assertEquals(listOf(people["ben"]), entry.reports.map { it.reporter })
            assertEquals(ReportReason.SPAM, entry.reports.single().reason)

            val refused = assertFailsWith<QuartierException.NotPermitted> { ben.moderateItem(spam, ModerationAction.HIDE, "") }
            assertEquals("forbidden", refused.errorCode())
            coord.moderateItem(spam, ModerationAction.HIDE, "Keine Werbung")
            syncAll()
            assertTrue(coord.moderationQueue(space).isEmpty())
            assertEquals(emptyList(), titles(ben, space, people.getValue("ben")))
            assertEquals(listOf("Billige Uhren"), titles(anna, space, people.getValue("anna")))
            val told = anna.moderationLog(space, 10).single()
            assertEquals(ModerationAction.HIDE, told.action)
            assertEquals("Keine Werbung", told.text)
            assertNull(told.actor)

            anna.createItem(Fixtures.post(space, people.getValue("anna"), "Hofflohmarkt"))
            ben.setMuted(people.getValue("anna"), true)
            syncAll()
            assertEquals(emptyList(), titles(ben, space, people.getValue("ben")))
            assertEquals(listOf("Hofflohmarkt"), titles(coord, space, people.getValue("coord")))
            assertEquals(listOf(people.getValue("anna")), ben.mutedPersons())
        } finally {
            (syncs.values + stores.values).forEach { it.close() }
        }
    }

    @Test
    fun `a request on the help board flow, a response, an agreement with the contacts for the two`() = runBlocking<Unit> {
        val names = listOf("coord", "anna", "ben")
        val stores = names.associateWith { QuartierStore.open(dir.resolve("help-$it.db").toString()) }
        val syncs = names.associateWith { QuartierSync(stores.getValue(it), server.url) }
        try {
            val anna = stores.getValue("anna")
            val ben = stores.getValue("ben")
            val people = mutableMapOf("coord" to syncs.getValue("coord").register("Koordination").personId)
            val space = syncs.getValue("coord").createSpace(Fixtures.berlinMeta).space.id
            for (name in listOf("anna", "ben")) {
                val code = syncs.getValue("coord").createInvite(space, Role.RESIDENT, System.currentTimeMillis() + 3_600_000, 1)
                people[name] = syncs.getValue(name).register(name).personId
                syncs.getValue(name).redeemInvite(code)
            }
            suspend fun syncAll() = listOf("anna", "ben", "coord", "anna", "ben").forEach { syncs.getValue(it).syncNow() }
            syncAll()
            val details = ItemDetails.Request(Request(RequestDirection.NEED, "einkauf", RequestState.OPEN))
            val wanted = anna.createItem(NewItem(space, people.getValue("anna"), Fixtures.content("Wer kauft ein?", details))).id
            val notified = async { withTimeout(30_000) { anna.notificationsFlow().first { it.isNotEmpty() } } }
            val benSees = Viewer(people.getValue("ben"), Role.RESIDENT)
            val onBoard = async { withTimeout(30_000) { ben.helpBoardFlow(space, benSees).first { it.isNotEmpty() } } }
            syncAll()
            assertEquals(listOf(wanted), onBoard.await().map { it.id })

            assertFailsWith<QuartierException.NotPermitted> { anna.respondToRequest(wanted, "", "") }
            ben.respondToRequest(wanted, "Ich fahre morgen", "Ben: 0171 111")
            syncAll()
            assertEquals(listOf(people["ben"]), anna.helpStatus(wanted).responses.map { it.person })
            val response = notified.await().single()
            assertEquals(NotificationKind.RESPONSE, response.kind)
            assertEquals(people["ben"], response.person)
            assertEquals(1, anna.unreadNotifications())
            anna.markNotificationsRead(listOf(response.id))
            assertEquals(0, anna.unreadNotifications())
            val offBoard = async { withTimeout(30_000) { ben.helpBoardFlow(space, benSees).first { it.isEmpty() } } }
            anna.agreeToHelp(wanted, people.getValue("ben"), "Anna: 0221 333")
            syncAll()
            offBoard.await()
            val mine = anna.helpStatus(wanted)
            assertEquals(HelpState.AGREED, mine.state)
            assertEquals("Ben: 0171 111", mine.contact)
            val chosen = ben.helpStatus(wanted)
            assertEquals(true, chosen.chosen)
            assertEquals("Anna: 0221 333", chosen.contact)
            assertNull(stores.getValue("coord").helpStatus(wanted).contact)
            assertEquals(listOf(NotificationKind.AGREED), ben.notifications(false, 10).map { it.kind })
        } finally {
            (syncs.values + stores.values).forEach { it.close() }
        }
    }

    @Test
    fun `offers upkeep and content warnings on one phone`() {
        QuartierStore.open(dir.resolve("upkeep.db").toString()).use { store ->
            val me = java.util.UUID.randomUUID().toString()
            val space = store.createSpace(Fixtures.berlinMeta, me).id
            val offer = store.createItem(
                NewItem(space, me, Fixtures.content("Sozialberatung", ItemDetails.Offer(Offer(Organization("Caritas"))))),
            ).id
            val coordinator = Viewer(me, Role.COORDINATOR)
            assertEquals(listOf(offer), store.offersToReview(space, coordinator, 180).map { it.id })
            val checked = store.confirmOffer(offer, me).content.details as ItemDetails.Offer
            assertEquals(me, checked.v1.assuredBy)
            assertTrue(store.offersToReview(space, coordinator, 180).isEmpty())

            val photo = MediaRef(hash = "b".repeat(64), mimeType = "image/jpeg", size = 10)
            val voice = MediaRef(hash = "c".repeat(64), mimeType = "audio/ogg", size = 10, durationMs = 3_000)
            val audio = Fixtures.content("Sprachnachricht", ItemDetails.Post(Post(PostType.AUDIO))).copy(media = listOf(voice, photo))
            assertEquals(
                listOf(ContentWarning.MissingTranscript(0), ContentWarning.MissingAltText(1)),
                contentWarnings(audio),
            )
        }
    }
}
