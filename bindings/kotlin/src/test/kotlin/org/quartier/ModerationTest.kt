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
import org.quartier.flow.moderationQueueFlow
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
 * attempt to moderate is `NotPermitted`; a mute hides a person on this phone only.
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
}
