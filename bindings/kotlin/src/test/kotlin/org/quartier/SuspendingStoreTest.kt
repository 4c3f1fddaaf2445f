package org.quartier

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import org.quartier.flow.SuspendingStore
import org.quartier.flow.suspending
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.nio.file.Path
import java.util.UUID
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicInteger
import kotlin.coroutines.CoroutineContext
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/** The suspending store calls run on the dispatcher they are given, with the same results. */
class SuspendingStoreTest {
    @TempDir
    lateinit var dir: Path

    private val anyone = UUID.randomUUID().toString()

    /** A single named thread, counting the blocks dispatched to it. */
    private class CountingDispatcher : CoroutineDispatcher(), AutoCloseable {
        private val executor = Executors.newSingleThreadExecutor { r -> Thread(r, "quartier-test-io") }
        private val inner = executor.asCoroutineDispatcher()
        val dispatched = AtomicInteger()

        override fun dispatch(context: CoroutineContext, block: Runnable) {
            dispatched.incrementAndGet()
            inner.dispatch(context, block)
        }

        override fun close() = executor.shutdown()
    }

    @Test
    fun `every call runs on the injected dispatcher, off the caller's thread`() = runBlocking<Unit> {
        CountingDispatcher().use { io ->
            SuspendingStore.open(dir.resolve("s.db").toString(), io).use { store ->
                val caller = Thread.currentThread()
                val worker = store.call { Thread.currentThread() }
                // (Coroutine debug mode appends " @coroutine#N" to the name while it runs.)
                assertTrue(worker.name.startsWith("quartier-test-io"), worker.name)
                assertTrue(worker != caller)

                val before = io.dispatched.get()
                val sid = store.createSpace(Fixtures.berlinMeta, anyone).id
                val item = store.createItem(Fixtures.post(sid, anyone, "Straßenfest", "am Samstag"))
                val edited = store.updateItem(item.id, ItemPatch(tags = listOf("fest")), anyone)
                val viewer = Viewer(anyone, Role.RESIDENT)
                val feed = store.feed(FeedQuery(spaceId = sid, viewer = viewer))
                val hits = store.search(SearchRequest(spaceId = sid, viewer = viewer, text = "strassenfest"))
                val detail = store.itemDetail(item.id, viewer)
                // Six calls, each dispatched to the injected dispatcher (and back).
                assertTrue(io.dispatched.get() - before >= 6, "dispatched ${io.dispatched.get() - before}")

                assertEquals(listOf("fest"), edited.content.tags)
                assertEquals(listOf(item.id), feed.items.map { it.id })
                assertEquals(listOf(item.id), hits.map { it.item.id })
                assertEquals(item.id, detail.item.id)
                assertEquals(store.store.outboxLen(), store.outboxLen())

                // The store's typed errors arrive unchanged.
                assertFailsWith<QuartierException.NotFound> { store.itemDetail(UUID.randomUUID().toString(), viewer) }
                assertFailsWith<QuartierException.Invalid> { store.space("not-a-uuid") }
            }
        }
    }

    @Test
    fun `suspending() wraps an open store, and closing the wrapper closes the store`() = runBlocking<Unit> {
        val path = dir.resolve("w.db").toString()
        val blocking = QuartierStore.open(path)
        val store = blocking.suspending()
        val sid = store.createSpace(Fixtures.berlinMeta, anyone).id
        assertEquals(listOf(sid), store.spaces().map { it.id })
        store.close()
        assertFailsWith<IllegalStateException> { blocking.spaces() }
        QuartierStore.open(path).use { assertEquals(listOf(sid), it.spaces().map { s -> s.id }) }
    }
}
