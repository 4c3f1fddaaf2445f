package org.quartier

import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.io.TempDir
import org.quartier.flow.SyncUpdate
import org.quartier.flow.backgroundSyncFlow
import org.quartier.flow.feedFlow
import org.quartier.flow.syncFlow
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.nio.file.Path
import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertTrue

/** The scenario every binding must pass, against the real library and a real server. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ScenarioTest {
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

    private fun open(name: String) = QuartierStore.open(dir.resolve("$name.db").toString())

    private val anyone = UUID.randomUUID().toString()

    @Test
    fun `items of several kinds, search and map query`() {
        open("local").use { store ->
            val space = store.createSpace(Fixtures.berlinMeta, anyone)
            val sid = space.id
            val created = listOf(
                store.createItem(Fixtures.post(sid, anyone, "Straßenfest am Samstag", "Kuchen und Musik")),
                store.createItem(Fixtures.place(sid, anyone, "Nachbarschaftscafé", 51.3127, 9.4797)),
                store.createItem(Fixtures.place(sid, anyone, "Bürgerhaus Süd", 51.2800, 9.4500)),
                store.createItem(Fixtures.offer(sid, anyone, "Tafel Nordstadt")),
                store.createItem(Fixtures.event(sid, anyone, "Seniorentreff")),
                store.createItem(Fixtures.request(sid, anyone, "Einkaufshilfe gesucht")),
            )
            assertEquals(
                listOf(ItemKind.POST, ItemKind.PLACE, ItemKind.PLACE, ItemKind.OFFER, ItemKind.EVENT, ItemKind.REQUEST),
                created.map { it.kind() },
            )
            assertEquals(listOf(space), store.spaces())

            val viewer = Viewer(anyone, Role.RESIDENT)
            val feed = store.feed(FeedQuery(spaceId = sid, viewer = viewer))
            assertEquals(created.map { it.id }.toSet(), feed.items.map { it.id }.toSet())

            // Case and diacritics folded: "strassenfest" finds "Straßenfest".
            val hits = store.search(SearchRequest(spaceId = sid, viewer = viewer, text = "strassenfest"))
            assertEquals(listOf(created[0].id), hits.map { it.item.id })
            assertTrue(hits[0].title.matches.isNotEmpty(), "the snippet marks the match")

            // A viewport around the café only, not the Bürgerhaus 3 km south.
            val inView = store.viewport(
                ViewportQuery(spaceId = sid, viewer = viewer, south = 51.30, west = 9.47, north = 51.32, east = 9.49),
            )
            assertEquals(listOf(created[1].id), inView.map { it.id })
            val pins = store.mapPins(
                ViewportQuery(spaceId = sid, viewer = viewer, south = 51.30, west = 9.47, north = 51.32, east = 9.49),
            )
            assertEquals(listOf(created[1].id), pins.map { it.id })
            assertEquals(created[1].content.title, pins[0].title, "the pin carries every language of the title")
            assertEquals(created[1].content.location?.lat, pins[0].lat)
            val near = store.near(
                RadiusQuery(spaceId = sid, viewer = viewer, center = Location(lat = 51.3127, lon = 9.4797, source = PositionSource.GPS), radiusM = 5_000.0),
            )
            assertEquals(listOf(created[1].id, created[2].id), near.map { it.item.id }, "nearest first")
        }
    }

    @Test
    fun `live query flow updates after a write`() = runBlocking {
        open("live").use { store ->
            val sid = store.createSpace(Fixtures.berlinMeta, anyone).id
            store.createItem(Fixtures.post(sid, anyone, "Erster Beitrag"))
            val query = FeedQuery(spaceId = sid, viewer = Viewer(anyone, Role.RESIDENT))
            withTimeout(20_000) {
                val pages = store.feedFlow(query)
                // The first emission is the current state.
                assertEquals(1, pages.first().items.size)
                // Then a write elsewhere shows up in the same collection.
                val seen = mutableListOf<Int>()
                pages.first { page ->
                    seen += page.items.size
                    if (page.items.size == 1) store.createItem(Fixtures.post(sid, anyone, "Zweiter Beitrag"))
                    page.items.size == 2
                }
                assertEquals(2, seen.last())
            }
        }
    }

    @Test
    fun `two stores sync through a real server`() = runBlocking {
        open("alice").use { alice ->
            open("bob").use { bob ->
                QuartierSync(alice, server.url).use { aliceSync ->
                    QuartierSync(bob, server.url).use { bobSync ->
                        withTimeout(60_000) { syncTwoStores(alice, aliceSync, bob, bobSync) }
                    }
                }
            }
        }
    }

    private suspend fun syncTwoStores(alice: QuartierStore, aliceSync: QuartierSync, bob: QuartierStore, bobSync: QuartierSync) {
        val alicePerson = aliceSync.register("Alice").personId
        val bobPerson = bobSync.register("Bob").personId
        val shared = aliceSync.createSpace(Fixtures.berlinMeta)
        assertEquals(Role.COORDINATOR, shared.membership?.role)
        val sid = shared.space.id
        alice.createItem(Fixtures.post(sid, alicePerson, "Hallo Nachbarschaft"))
        alice.createItem(Fixtures.offer(sid, alicePerson, "Beratung dienstags"))

        val code = aliceSync.createInvite(sid, Role.VOLUNTEER, System.currentTimeMillis() + 3_600_000, 1L)
        assertEquals(Role.VOLUNTEER, bobSync.redeemInvite(code).role)

        // Alice pushes through the Flow wrapper: progress pages, then the report.
        val updates = aliceSync.syncFlow().toList()
        val finished = assertIs<SyncUpdate.Finished>(updates.last())
        assertTrue(finished.report.pushed >= 2, "pushed ${finished.report.pushed}")
        assertTrue(updates.dropLast(1).all { it is SyncUpdate.Progress })
        assertEquals(0L, alice.outboxLen())

        // Bob watches his feed while he pulls: the live query sees Alice's items arrive.
        val bobQuery = FeedQuery(spaceId = sid, viewer = Viewer(bobPerson, Role.VOLUNTEER))
        val report = bobSync.syncNow()
        assertTrue(report.received >= 2, "received ${report.received}")
        val bobFeed = bob.feedFlow(bobQuery).first { it.items.size == 2 }
        assertEquals(setOf("Hallo Nachbarschaft", "Beratung dienstags"), bobFeed.items.map { it.content.title["de"] }.toSet())

        // And back: Bob writes, both sync, Alice's live feed shows it.
        bob.createItem(Fixtures.request(sid, bobPerson, "Wer hilft beim Umzug?"))
        bobSync.syncNow()
        aliceSync.syncNow()
        val aliceFeed = alice.feedFlow(FeedQuery(spaceId = sid, viewer = Viewer(alicePerson, Role.COORDINATOR))).first { it.items.size == 3 }
        assertTrue(aliceFeed.items.any { it.author == bobPerson && it.kind() == ItemKind.REQUEST })
    }

    @Test
    fun `background sync flow and a failing sync flow`() = runBlocking {
        open("background").use { store ->
            QuartierSync(store, server.url).use { sync ->
                withTimeout(60_000) {
                    // Not registered yet: the sync flow ends with the typed error, not a hang.
                    assertFailsWith<QuartierException.NotRegistered> { sync.syncFlow().toList() }
                    val person = sync.register("Carla").personId
                    val sid = sync.createSpace(Fixtures.berlinMeta).space.id
                    store.createItem(Fixtures.post(sid, person, "im Hintergrund"))
                    // Collecting starts background sync; leaving first() stops it.
                    val finished = sync.backgroundSyncFlow(1_000).first { it is SyncEvent.Finished }
                    assertTrue((finished as SyncEvent.Finished).report.pushed >= 1)
                    assertEquals(0L, store.outboxLen())
                }
            }
        }
    }

    @Test
    fun `typed errors arrive as QuartierException subclasses`() {
        open("errors").use { store ->
            val sid = store.createSpace(Fixtures.berlinMeta, anyone).id
            val viewer = Viewer(anyone, Role.RESIDENT)
            val missing = assertFailsWith<QuartierException.NotFound> {
                store.itemDetail(UUID.randomUUID().toString(), viewer)
            }
            assertTrue(missing.message!!.contains("not found"), missing.message)
            assertFailsWith<QuartierException.Invalid> { store.space("not-a-uuid") }
            assertFailsWith<QuartierException.InvalidCoordinates> {
                store.createItem(Fixtures.place(sid, anyone, "Nirgendwo", 123.0, 9.0))
            }
            assertFailsWith<QuartierException.Invalid> { QuartierSync(store, "ftp://example.invalid") }
        }
    }

    @Test
    fun `close() closes the store - a sync made from it sees Closed, and the file opens again`() = runBlocking {
        val path = dir.resolve("closing.db").toString()
        val store = QuartierStore.open(path)
        val sid = store.createSpace(Fixtures.berlinMeta, anyone).id
        store.createItem(Fixtures.post(sid, anyone, "vor dem Schließen"))
        QuartierSync(store, "http://127.0.0.1:9").use { sync ->
            assertEquals(emptyList(), sync.status())
            // One meaning of close: releasing the object closes the database (its Drop), even
            // though the sync still holds on to the store.
            store.close()
            assertFailsWith<IllegalStateException> { store.spaces() }
            assertFailsWith<QuartierException.Closed> { sync.status() }
            assertFailsWith<QuartierException.Closed> { sync.register("Zu spät") }
        }
        // Closed means checkpointed and released: no -wal left behind, and the file reopens
        // with everything written.
        assertTrue(!java.io.File("$path-wal").exists() || java.io.File("$path-wal").length() == 0L, "WAL checkpointed")
        QuartierStore.open(path).use { again ->
            val feed = again.feed(FeedQuery(spaceId = sid, viewer = Viewer(anyone, Role.RESIDENT)))
            assertEquals(listOf("vor dem Schließen"), feed.items.map { it.content.title["de"] })
            assertEquals(false, again.isClosed())
        }
    }

    @Test
    fun `sync against an unreachable server is Offline, and the store stays usable`() = runBlocking {
        open("offline").use { store ->
            // Port 9 on loopback: nothing listens there, the connection is refused at once.
            QuartierSync(store, "http://127.0.0.1:9").use { sync ->
                val e = assertFailsWith<QuartierException.Offline> { sync.register("Nobody") }
                // Structured facts an app branches on: a stable code, no HTTP answer, retry later.
                assertEquals("offline", e.errorCode())
                assertEquals(null, e.httpStatus())
                assertTrue(e.isRetryable())
            }
            assertEquals(emptyList(), store.spaces())
        }
    }

    @Test
    fun `cancelling the coroutine ends a call the server never answers, with a token or without`() = runBlocking {
        // A server that accepts connections and never answers: the calls wait until cancelled.
        java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress()).use { silent ->
            open("cancel").use { store ->
                QuartierSync(store, "http://127.0.0.1:${silent.localPort}").use { sync ->
                    // Without a token: uniffi drops the Rust future when the coroutine is
                    // cancelled, and the library aborts the task behind it.
                    assertEquals(null, withTimeoutOrNull(300) { sync.register("Wartend") })
                    // With a token cancelled from another thread: a typed Cancelled.
                    val token = CancelToken()
                    Thread { Thread.sleep(300); token.cancel() }.start()
                    assertFailsWith<QuartierException.Cancelled> { sync.register("Wartend", token) }
                    // Neither left anything behind, and the store and runtime go on.
                    assertEquals(null, store.account())
                    assertEquals(1, listOf(store.createSpace(Fixtures.berlinMeta, anyone)).size)
                }
            }
        }
    }

    @Test
    fun `a panic inside the core is an exception and the library stays usable`() {
        open("panic").use { store ->
            val sid = store.createSpace(Fixtures.berlinMeta, anyone).id
            repeat(3) { round ->
                val e = assertFailsWith<QuartierException.Internal> { store.diagnosticPanic("round $round") }
                assertTrue(e.message!!.contains("round $round"), e.message)
                // Same store, right after the panic: writes and reads work.
                store.createItem(Fixtures.post(sid, anyone, "nach Panik $round"))
            }
            val feed = store.feed(FeedQuery(spaceId = sid, viewer = Viewer(anyone, Role.RESIDENT)))
            assertEquals(3, feed.items.size)
        }
    }
}
