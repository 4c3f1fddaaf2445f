package org.quartier

import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.nio.file.Path
import java.util.Collections
import java.util.UUID
import java.util.concurrent.CountDownLatch
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.assertTrue

class ConcurrencyTest {
    @TempDir
    lateinit var dir: Path

    /** Records every result; optionally reads the store from inside the callback. */
    private class CountingListener(private val store: QuartierStore?, private val query: FeedQuery?) : LiveQueryListener {
        val results = AtomicInteger()
        val errors: MutableList<Throwable> = Collections.synchronizedList(mutableListOf())

        @Volatile
        var lastSize = -1
        private val full = CountDownLatch(1)
        var expected = Int.MAX_VALUE

        override fun onResult(result: LiveResult) {
            results.incrementAndGet()
            val size = (result as LiveResult.Feed).page.items.size
            lastSize = size
            // Re-entrant call into the library from its notifier thread must not deadlock.
            if (store != null && query != null) {
                try {
                    store.feed(query)
                } catch (e: Throwable) {
                    errors += e
                }
            }
            if (size >= expected) full.countDown()
        }

        override fun onError(error: QuartierException) {
            errors += error
        }

        fun awaitFull() = full.await(60, TimeUnit.SECONDS)
    }

    @Test
    fun `many threads write and read while listeners fire`() {
        val threads = 8
        val perThread = 40
        QuartierStore.open(dir.resolve("busy.db").toString()).use { store ->
            val me = UUID.randomUUID().toString()
            val sid = store.createSpace(Fixtures.berlinMeta, me).id
            val viewer = Viewer(me, Role.RESIDENT)
            // limit above the total so the last result shows every item.
            val query = FeedQuery(spaceId = sid, viewer = viewer, limit = 1_000)
            val listeners = List(4) { i -> CountingListener(if (i % 2 == 0) store else null, query) }
            listeners.forEach { it.expected = threads * perThread }
            val subscriptions = listeners.map { store.subscribeFeed(query, it) }

            val failures = Collections.synchronizedList(mutableListOf<Throwable>())
            val start = CyclicBarrier(threads)
            val pool = Executors.newFixedThreadPool(threads)
            repeat(threads) { t ->
                pool.execute {
                    try {
                        start.await()
                        repeat(perThread) { i ->
                            store.createItem(Fixtures.post(sid, me, "Beitrag $t-$i Gartenzaun"))
                            when (i % 4) {
                                0 -> store.search(SearchRequest(spaceId = sid, viewer = viewer, text = "gartenzaun"))
                                1 -> store.feed(FeedQuery(spaceId = sid, viewer = viewer, limit = 10))
                                2 -> store.viewport(ViewportQuery(spaceId = sid, viewer = viewer, south = 50.0, west = 9.0, north = 52.0, east = 10.0))
                                // Subscriptions come and go while others fire.
                                else -> store.subscribeFeed(query, CountingListener(null, null)).use { it.cancel() }
                            }
                        }
                    } catch (e: Throwable) {
                        failures += e
                    }
                }
            }
            pool.shutdown()
            assertTrue(pool.awaitTermination(120, TimeUnit.SECONDS), "writers finished")
            assertEquals(emptyList(), failures.toList())

            val total = threads * perThread
            assertEquals(total, store.feed(query).items.size)
            assertEquals(total, store.search(SearchRequest(spaceId = sid, viewer = viewer, text = "gartenzaun", limit = 1_000)).size)
            for (listener in listeners) {
                // Every listener eventually reports the final state, and fired along the way.
                assertTrue(listener.awaitFull(), "listener saw ${listener.lastSize} of $total")
                assertEquals(emptyList(), listener.errors.toList())
                assertTrue(listener.results.get() >= 2)
            }

            // After cancel() no more calls. A call already under way may still finish, so the
            // counts are taken once the notifier is past it: the store has one notifier thread
            // working in order, so a listener subscribed later getting its result is a barrier.
            subscriptions.forEach { it.cancel(); it.close() }
            fun barrier(expected: Int) {
                val sentinel = CountingListener(null, null).apply { this.expected = expected }
                store.subscribeFeed(query, sentinel).use { sub ->
                    assertTrue(sentinel.awaitFull(), "sentinel saw ${sentinel.lastSize} of $expected")
                    sub.cancel()
                }
            }
            barrier(total)
            val counts = listeners.map { it.results.get() }
            store.createItem(Fixtures.post(sid, me, "nach dem Abbestellen"))
            barrier(total + 1)
            assertEquals(counts, listeners.map { it.results.get() })
        }
    }
}
