package org.quartier

import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.io.TempDir
import org.quartier.flow.PeerUpdate
import org.quartier.flow.meetAtFlow
import org.quartier.flow.meetNextFlow
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.nio.file.Path
import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * Device to device from Kotlin against a real server: two phones registered there, in one space,
 * both synced (so both hold certificates); a [QuartierPeerSession] pair exchanging QR-sized
 * frames in the test's own loop carries a post, which the receiver carries on to the server;
 * the local network over loopback (opt-in, a listener, [meetAtFlow] and [meetNextFlow]) with
 * progress after every frame. mDNS only between child processes in network namespaces: in the
 * test's own process it would multicast on the machine's real interfaces.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PeerTest {
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

    /** Two phones of one space: `a` made it, `b` joined as a volunteer; both synced once. */
    private inner class Phones(name: String) : AutoCloseable {
        val a = QuartierStore.open(dir.resolve("$name-a.db").toString())
        val b = QuartierStore.open(dir.resolve("$name-b.db").toString())
        val syncA = QuartierSync(a, server.url)
        val syncB = QuartierSync(b, server.url)
        lateinit var personA: String
        lateinit var personB: String
        lateinit var space: String

        suspend fun meetTheServer() {
            personA = syncA.register("Anna").personId
            space = syncA.createSpace(Fixtures.berlinMeta).space.id
            val code = syncA.createInvite(space, Role.VOLUNTEER, System.currentTimeMillis() + 3_600_000, 1)
            personB = syncB.register("Ben").personId
            syncB.redeemInvite(code)
            syncA.syncNow()
            syncB.syncNow()
        }

        /** A post of `a`'s, written offline (not pushed). */
        fun write(title: String, body: String = "") = a.createItem(Fixtures.post(space, personA, title, body))

        fun bHas(item: Item) = runCatching { b.itemDetail(item.id, Viewer(personB, Role.VOLUNTEER)).item.content.title }
            .getOrNull() == item.content.title

        override fun close() {
            listOf(syncA, syncB, a, b).forEach { it.close() }
        }
    }

    @Test
    fun `certificates after a sync, and a QR-sized session in our own loop carries a post`() = runBlocking<Unit> {
        Phones("qr").use { phones ->
            phones.meetTheServer()
            val now = System.currentTimeMillis()
            for ((store, role) in listOf(phones.a to Role.COORDINATOR, phones.b to Role.VOLUNTEER)) {
                val cert = store.peerCertificates().single()
                assertEquals(Triple(phones.space, role, true), Triple(cert.space, cert.role, cert.valid))
                assertTrue(cert.issuedAtMs <= now + 60_000 && now < cert.expiresAtMs, "$cert")
            }

            val item = phones.write("Hoffest am Samstag", "Wir grillen im Hof. ".repeat(150))
            assertTrue(!phones.bHas(item))
            val qr = qrFrameBytes()
            assertEquals(2_000L, qr)
            QuartierPeerSession(phones.a, PeerRole.INITIATOR, frameBytes = qr).use { initiator ->
                QuartierPeerSession(phones.b, PeerRole.RESPONDER, frameBytes = qr).use { responder ->
                    assertNull(responder.firstFrame(), "the responder waits")
                    var frame = assertNotNull(initiator.firstFrame())
                    assertNull(initiator.firstFrame(), "the first frame, once")
                    // The transport: codes "shown" on one phone and "scanned" by the other.
                    val shown = mutableListOf<ByteArray>()
                    var next: ByteArray? = frame
                    while (next != null) {
                        frame = next
                        shown += frame
                        assertTrue(frame.size <= qr, "${frame.size}")
                        next = (if (shown.size % 2 == 1) responder else initiator).receive(frame)
                    }
                    assertTrue(initiator.isFinished() && responder.isFinished())
                    assertTrue(shown.size > 4, "the post took several codes: ${shown.size}")

                    val got = responder.report()
                    val gave = initiator.report()
                    assertEquals(1L, got.changesReceived, "$got")
                    assertEquals(1L, gave.changesSent, "$gave")
                    assertEquals(1L, got.sharedSpaces)
                    assertEquals(0L, got.refusedCount)
                    assertEquals(phones.a.account()?.deviceId, got.peerDevice)
                    assertEquals(shown.size.toLong(), got.framesReceived + gave.framesReceived)
                    assertTrue(phones.bHas(item), "the post reached the other phone")

                    // B carries A's post to the server until its next sync delivers it.
                    assertEquals(1L, got.carried)
                    assertEquals(1L, phones.b.carriedChanges().changes)
                    phones.syncB.syncNow()
                    assertEquals(CarriedChanges(0, 0), phones.b.carriedChanges())

                    // A finished session takes no more frames; garbage is a typed refusal.
                    val finished = assertFailsWith<QuartierException.Peer> { responder.receive(shown[0]) }
                    assertEquals("protocol", finished.errorCode())
                }
            }
            QuartierPeerSession(phones.b, PeerRole.RESPONDER).use { other ->
                val garbage = assertFailsWith<QuartierException.Peer> { other.receive(byteArrayOf(7, 1, 2)) }
                assertEquals("malformed", garbage.errorCode())
            }
        }
    }

    @Test
    fun `the local network over loopback with flows of progress`() = runBlocking<Unit> {
        Phones("lan").use { phones ->
            phones.meetTheServer()
            val item = phones.write("Flohmarkt im Veedel")
            for (store in listOf(phones.a, phones.b)) {
                store.setNearby(phones.space, true)
                assertEquals(listOf(phones.space), store.nearbySpaces())
            }
            QuartierPeerListener(phones.b).use { listener ->
                assertTrue(listener.port() > 0)
                // Cancelling a collector that waits for a device stops the waiting; the
                // listener goes on listening.
                assertNull(withTimeoutOrNull(300) { listener.meetNextFlow().toList() })
                delay(100) // the library drops the cancelled wait

                val (served, met) = withTimeout(60_000) {
                    coroutineScope {
                        val served = async { listener.meetNextFlow().toList() }
                        val met = async { phones.a.meetAtFlow("127.0.0.1:${listener.port()}").toList() }
                        served.await() to met.await()
                    }
                }
                for (updates in listOf(served, met)) {
                    val finished = assertIs<PeerUpdate.Finished>(updates.last()).report
                    val progress = updates.dropLast(1).map { assertIs<PeerUpdate.Progress>(it).report }
                    // One progress report per frame received, the last one the final report.
                    assertEquals((1L..finished.framesReceived).toList(), progress.map { it.framesReceived })
                    assertEquals(finished, progress.last())
                    assertTrue(finished.finished)
                }
                val report = assertIs<PeerUpdate.Finished>(served.last()).report
                assertEquals(1L, report.changesReceived, "$report")
                assertEquals(1L, assertIs<PeerUpdate.Finished>(met.last()).report.changesSent)
                assertTrue(phones.bHas(item), "the post reached the other phone")
            }

            // A session that fails ends its flow with the typed error.
            assertFailsWith<QuartierException.Invalid> { phones.a.meetAtFlow("nebenan").toList() }
            phones.a.setNearby(phones.space, false)
            assertEquals(emptyList(), phones.a.nearbySpaces())
            val limits = RelayLimits(0, 86_400_000)
            phones.b.setRelayLimits(limits)
            assertEquals(limits, phones.b.relayLimits())
            assertFailsWith<QuartierException.Invalid> { phones.b.setRelayLimits(RelayLimits(-1, 0)) }
        }
    }

    /** One QR-sized session between two stores, frames handed across in this loop: the
     * responder's report, then the initiator's. */
    private fun meet(initiatorStore: QuartierStore, responderStore: QuartierStore): Pair<PeerReport, PeerReport> =
        QuartierPeerSession(initiatorStore, PeerRole.INITIATOR, frameBytes = qrFrameBytes()).use { initiator ->
            QuartierPeerSession(responderStore, PeerRole.RESPONDER, frameBytes = qrFrameBytes()).use { responder ->
                var frame = initiator.firstFrame()
                var turn = 0
                while (frame != null) {
                    frame = (if (turn % 2 == 0) responder else initiator).receive(frame)
                    turn++
                }
                responder.report() to initiator.report()
            }
        }

    /**
     * A phone on a tight data plan: with the peer signatures off, Carla gets Anna's post from the
     * server but cannot show it on to Ben; turned on, one sync fetches them and the next session
     * carries the post.
     */
    @Test
    fun `a phone on a tight data plan fetches peer signatures only when turned on`() = runBlocking<Unit> {
        Phones("plan").use { phones ->
            phones.meetTheServer()
            val item = phones.write("Tafel heute offen")
            phones.syncA.syncNow()
            fun holds(store: QuartierStore) = runCatching {
                store.itemDetail(item.id, Viewer(phones.personB, Role.VOLUNTEER)).item.content.title
            }.getOrNull() == item.content.title
            QuartierStore.open(dir.resolve("plan-c.db").toString()).use { carla ->
                QuartierSync(carla, server.url).use { syncC ->
                    assertTrue(carla.peerSignatures(), "on by default")
                    carla.setPeerSignatures(false)
                    assertTrue(!carla.peerSignatures(), "turned off")
                    syncC.register("Carla")
                    val code = phones.syncA.createInvite(phones.space, Role.VOLUNTEER, System.currentTimeMillis() + 3_600_000, 1)
                    syncC.redeemInvite(code)
                    syncC.syncNow()
                    assertTrue(holds(carla) && !holds(phones.b), "Carla has the post, Ben not yet")

                    val (got, gave) = meet(carla, phones.b)
                    assertTrue(got.changesReceived == 0L && gave.unsignedDocuments >= 1L, "$got / $gave")
                    assertTrue(!holds(phones.b), "Ben is still without it")

                    carla.setPeerSignatures(true)
                    syncC.syncNow()
                    val (gotNow, gaveNow) = meet(carla, phones.b)
                    assertEquals(1L, gotNow.changesReceived, "$gotNow")
                    assertEquals(0L, gaveNow.unsignedDocuments, "$gaveNow")
                    assertTrue(holds(phones.b), "Ben got the post from Carla")
                }
            }
        }
    }

    /**
     * Discovery where it may multicast: two network namespaces joined by a veth pair (root only;
     * skipped elsewhere), a phone in each as its own JVM ([NearbyChild]). One announces a
     * listener for an opted-in space; the other's [nearbyDevicesFlow] finds it by the space's
     * tag at its address and port; a phone of another space finds nothing.
     */
    @Test
    fun `nearby devices flow finds a phone of the space in another network namespace`() {
        NetworkNamespaces.pair("qkt", "10.79.1").use { net ->
            assumeTrue(net != null, "network namespaces are not available here (not root?)")
            net!!
            val space = UUID.randomUUID().toString()
            val listener = net.startIn(0, "listen", dir.resolve("nearby-a.db").toString(), space, net.address(0), "30")
            try {
                val line = listener.inputStream.bufferedReader().readLine()?.split(" ")
                assertEquals("LISTENING", line?.firstOrNull(), "listener said $line")
                val port = line!![1]
                val found = net.runIn(1, "browse", dir.resolve("nearby-b.db").toString(), space)
                assertEquals(listOf("${net.address(0)}:$port"), found, "the phone of the space, at its address")
                val stranger = net.runIn(1, "browse", dir.resolve("nearby-c.db").toString(), UUID.randomUUID().toString())
                assertEquals(emptyList(), stranger, "a phone of another space finds nothing")
            } finally {
                listener.destroyForcibly().waitFor()
            }
        }
    }
}
