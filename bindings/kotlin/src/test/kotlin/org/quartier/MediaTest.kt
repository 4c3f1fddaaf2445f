package org.quartier

import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.io.TempDir
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.awt.image.BufferedImage
import java.io.ByteArrayOutputStream
import java.io.File
import java.nio.file.Path
import java.util.Collections
import javax.imageio.ImageIO
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

/** A photo from one phone to another through a real server: import, upload, metered policy, on-demand fetch. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class MediaTest {
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

    /** A 1600×1200 camera-like JPEG written by the JDK's own encoder. */
    private fun photo(): ByteArray {
        val image = BufferedImage(1600, 1200, BufferedImage.TYPE_INT_RGB)
        for (y in 0 until 1200) for (x in 0 until 1600) image.setRGB(x, y, (x * 255 / 1600 shl 16) or (y * 255 / 1200 shl 8) or ((x + y) % 256))
        return ByteArrayOutputStream().also { ImageIO.write(image, "jpg", it) }.toByteArray()
    }

    private class Events : TransferProgressListener {
        val events: MutableList<TransferEvent> = Collections.synchronizedList(mutableListOf())
        override fun onTransfer(event: TransferEvent) {
            events.add(event)
        }
    }

    @Test
    fun `a photo travels to a second phone, originals wait on a metered link`() = runBlocking {
        open("alice").use { alice ->
            open("bob").use { bob ->
                QuartierSync(alice, server.url).use { aliceSync ->
                    QuartierSync(bob, server.url).use { bobSync ->
                        withTimeout(60_000) {
                            val alicePerson = aliceSync.register("Alice").personId
                            val bobPerson = bobSync.register("Bob").personId
                            val sid = aliceSync.createSpace(Fixtures.berlinMeta).space.id

                            val imported = alice.importMediaBytes(photo())
                            val ref = imported.reference
                            assertEquals("image/jpeg", ref.mimeType)
                            assertEquals(1600, ref.width)
                            val preview = assertNotNull(ref.preview)
                            val thumbnail = assertNotNull(ref.thumbnail)
                            assertTrue(thumbnail.width <= 256 && preview.width <= 1280)
                            val place = Fixtures.place(sid, alicePerson, "Stadtteilcafé", 51.3127, 9.4797)
                            // Records are immutable: a changed copy.
                            val withPhoto = place.copy(content = place.content.copy(media = listOf(ref.copy(altText = mapOf("de" to "Eingang mit Rampe")))))
                            alice.createItem(withPhoto)
                            aliceSync.syncNow()

                            val up = Events()
                            val sent = aliceSync.transferMedia(up)
                            val order = listOf(thumbnail.hash, preview.hash, ref.hash)
                            assertEquals(order, sent.uploaded)
                            assertEquals(order, up.events.filter { it.finished }.map { it.hash })

                            val code = aliceSync.createInvite(sid, Role.RESIDENT, System.currentTimeMillis() + 3_600_000, 1L)
                            bobSync.redeemInvite(code)
                            bobSync.syncNow()
                            val shown = bob.feed(FeedQuery(spaceId = sid, viewer = Viewer(bobPerson, Role.RESIDENT))).items.single()
                            assertEquals(mapOf("de" to "Eingang mit Rampe"), shown.content.media.single().altText)

                            bobSync.setTransferPolicy(TransferPolicy(metered = true))
                            val got = bobSync.transferMedia()
                            assertEquals(order.take(2), got.downloaded)
                            assertEquals(1L, got.deferred)
                            assertFailsWith<QuartierException.NotFound> { bob.mediaFile(ref.hash) }

                            val path = bobSync.fetchMedia(ref.hash)
                            assertContentEquals(alice.readMedia(ref.hash), File(path).readBytes())
                        }
                    }
                }
            }
        }
    }

    @Test
    fun `bad media is a typed exception and stores nothing`() {
        open("errors").use { store ->
            assertFailsWith<QuartierException.Media> { store.importMediaBytes("kein Foto".toByteArray()) }
            assertFailsWith<QuartierException.Media> { store.importMediaBytes(photo().copyOf(2_000)) }
            assertFailsWith<QuartierException.Invalid> { store.mediaInfo("../secret") }
            assertEquals(0L, store.evictMedia().presentBytes)
        }
    }
}
