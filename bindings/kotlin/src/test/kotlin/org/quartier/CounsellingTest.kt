package org.quartier

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.io.TempDir
import org.quartier.flow.counsellingChannelsFlow
import org.quartier.flow.counsellingFlow
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.nio.file.Path
import java.util.UUID
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * Counselling from Kotlin against a real server: an organisation admin appoints a caseworker, a
 * coordinator puts her into a team; a resident routes by topic and postcode, opens a
 * conversation offline and writes; the caseworker receives it through [counsellingFlow],
 * answers, notes and proposes an appointment, which the resident's flow shows; closing, a key
 * backup restored on a new phone, erasure emptying both flows, and the typed errors.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CounsellingTest {
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

    private fun texts(records: List<CounsellingRecord>) = records.mapNotNull {
        when (val body = it.body) {
            is Body.Message -> body.text
            is Body.Note -> body.text
            else -> null
        }
    }

    /** Collects [flow] into a channel while the test goes on; cancelled with the scope. */
    private fun <T> CoroutineScope.watch(flow: kotlinx.coroutines.flow.Flow<T>): Channel<T> {
        val updates = Channel<T>(Channel.UNLIMITED)
        launch { flow.collect { updates.send(it) } }
        return updates
    }

    /** The first update (waiting at most 30 s) that [done] accepts. */
    private suspend fun <T> Channel<T>.until(done: (T) -> Boolean): T = withTimeout(30_000) {
        var update = receive()
        while (!done(update)) update = receive()
        update
    }

    @Test
    fun `a resident and a team counsel, live through flows`() = runBlocking<Unit> {
        val names = listOf("coord", "anna", "resident", "phone")
        val stores = names.associateWith { QuartierStore.open(dir.resolve("$it.db").toString()) }
        val syncs = stores.mapValues { (_, store) -> QuartierSync(store, server.url) }
        val (coord, anna, resident, phone) = names.map { stores.getValue(it) }
        val (coordSync, annaSync, residentSync, phoneSync) = names.map { syncs.getValue(it) }
        try {
            // The space; its coordinator, as organisation admin, appoints a caseworker.
            val coordinator = coordSync.register("Koordination")
            val space = coordSync.createSpace(Fixtures.berlinMeta).space.id
            server.grantOrgAdmin(coordinator.personId)
            val expires = System.currentTimeMillis() + 3_600_000
            val workerCode = coordSync.createInvite(space, Role.CASEWORKER, expires, 1)
            val residentCode = coordSync.createInvite(space, Role.RESIDENT, expires, 1)
            val worker = annaSync.register("Anna (Beratung)")
            assertEquals(Role.CASEWORKER, annaSync.redeemInvite(workerCode).role)
            residentSync.register("Nachbarin")
            residentSync.redeemInvite(residentCode)

            val general = coordSync.createCounsellingTeam(space, TeamSettings("Schuldnerberatung", "debt", emptyList(), 90))
            val local = coordSync.createCounsellingTeam(space, TeamSettings("Beratung Nippes", "debt", listOf("507"), null))
            assertEquals(listOf(worker.personId), coordSync.addTeamMember(space, local.id, worker.personId).caseworkers)
            val refused = assertFailsWith<QuartierException.Server> {
                coordSync.createCounsellingTeam(space, TeamSettings("Falsch", "debt", emptyList(), -1))
            }
            assertEquals(400, refused.httpStatus())
            annaSync.syncNow()
            val channels = watch(anna.counsellingChannelsFlow())
            channels.until { list -> list.any { it.id == local.id && it.kind == ChannelKind.TEAM_NOTES } }

            // The resident routes by topic and postcode, and writes offline.
            val teams = residentSync.counsellingTeams(space)
            assertEquals(local.id, routeCounselling(teams, "debt", "50733")?.id)
            assertEquals(general.id, routeCounselling(teams, "debt", "10115")?.id)
            assertNull(routeCounselling(teams, "family", "50733"))
            val conversation = resident.openConversation(space, local.id)
            val mine = watch(resident.counsellingFlow(conversation))
            assertEquals(emptyList(), mine.until { true })
            resident.sendCounsellingMessage(conversation, "Ich habe Schulden beim Vermieter")
            assertEquals(RecordState.Queued, mine.until { it.size == 1 }.single().state)
            residentSync.syncNow()
            mine.until { it.single().state == RecordState.Delivered }

            // Anna's flow, collecting before her sync, receives it.
            val theirs = watch(anna.counsellingFlow(conversation))
            assertEquals(emptyList(), theirs.until { true }, "not on her phone yet")
            annaSync.syncNow()
            val got = theirs.until { texts(it) == listOf("Ich habe Schulden beim Vermieter") }
            assertEquals(Side.RESIDENT, got.single().fromSide)
            channels.until { list -> list.any { it.id == conversation && it.kind == ChannelKind.CONVERSATION } }

            // She answers, notes and proposes an appointment.
            anna.sendCounsellingMessage(conversation, "Bringen Sie den Brief mit")
            anna.writeCaseNote(local.id, conversation, "Mietschulden, etwa 1200 EUR")
            val appointment = UUID.randomUUID().toString()
            val startsAt = System.currentTimeMillis() + 86_400_000
            val place = AppointmentPlace.Video("https://video.example.org/raum-7")
            anna.sendCounselling(conversation, Body.Appointment(appointment, startsAt, 45, place, false))
            assertFailsWith<QuartierException.Invalid> {
                anna.sendCounselling(conversation, Body.Appointment(appointment, startsAt, -5, place, false))
            }
            annaSync.syncNow()
            assertEquals(listOf("Mietschulden, etwa 1200 EUR"), texts(anna.counsellingRecords(local.id)))

            // The resident's flow shows the answer and the appointment; never the note.
            residentSync.syncNow()
            val seen = mine.until { it.size == 3 }
            assertEquals(listOf("Ich habe Schulden beim Vermieter", "Bringen Sie den Brief mit"), texts(seen))
            assertEquals(Side.TEAM, seen[1].fromSide)
            assertEquals(Body.Appointment(appointment, startsAt, 45, place, false), seen[2].body)
            assertEquals(listOf(ChannelKind.CONVERSATION), resident.counsellingChannels().map { it.kind })

            // A photo of a letter goes encrypted with a message; Anna fetches and opens it.
            val letter = "Bescheid vom Jobcenter ".repeat(20_000).toByteArray()
            resident.sendCounsellingFiles(conversation, "Hier der Brief", listOf(NewAttachment(letter, "image/jpeg")))
            residentSync.syncNow()
            annaSync.syncNow()
            val file = anna.counsellingRecords(conversation)
                .mapNotNull { (it.body as? Body.Message)?.attachments?.firstOrNull() }
                .single()
            assertEquals(letter.size.toLong(), file.size)
            assertNull(anna.counsellingAttachment(conversation, file), "not fetched yet")
            assertContentEquals(letter, annaSync.fetchCounsellingAttachment(conversation, file))
            assertContentEquals(letter, anna.counsellingAttachment(conversation, file))

            // Closed by the team.
            anna.closeConversation(conversation)
            annaSync.syncNow()
            residentSync.syncNow()
            mine.until { records -> records.any { it.body is Body.Closed } }
            assertNotNull(resident.counsellingChannels().single().closedAtMs)

            // Key backup: a wrong passphrase is a typed error; the right one reads the history.
            val backup = residentSync.uploadKeyBackup("Kastanienbaum im Hinterhof 7")
            assertEquals(backup.backupId, resident.keyBackupId())
            phoneSync.register("Neues Telefon")
            val wrong = assertFailsWith<QuartierException.Counselling> {
                phoneSync.restoreKeyBackup(backup.backupId, "falsch")
            }
            assertEquals("wrong_passphrase", wrong.errorCode())
            assertEquals(1L, phoneSync.restoreKeyBackup(backup.backupId, "Kastanienbaum im Hinterhof 7"))
            phoneSync.syncNow()
            assertEquals(
                listOf("Ich habe Schulden beim Vermieter", "Bringen Sie den Brief mit", "Hier der Brief"),
                texts(phone.counsellingRecords(conversation)),
            )

            // Erasure empties the resident's flow at once and Anna's at her next sync.
            resident.eraseConversation(conversation)
            mine.until { it.isEmpty() }
            residentSync.syncNow()
            annaSync.syncNow()
            theirs.until { it.isEmpty() }
            assertTrue(anna.counsellingChannels().none { it.id == conversation })

            // Ids are UUID strings.
            val invalid = assertFailsWith<QuartierException.Invalid> { resident.sendCounsellingMessage("kein-uuid", "Hallo") }
            assertTrue("not a UUID" in invalid.message.orEmpty(), invalid.message)
            assertIs<QuartierException.NotFound>(runCatching { resident.counsellingRecords(conversation) }.exceptionOrNull())
        } finally {
            coroutineContext[kotlinx.coroutines.Job]?.children?.forEach { it.cancel() }
            syncs.values.forEach { it.close() }
            stores.values.forEach { it.close() }
        }
    }
}
