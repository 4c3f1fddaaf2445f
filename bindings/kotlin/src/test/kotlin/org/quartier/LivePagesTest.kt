package org.quartier

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import org.quartier.flow.SuspendingStore
import org.quartier.paging.feedPages
import org.quartier.paging.searchPages
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.nio.file.Path
import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** Feed and search pages as a pager loads them: keys, the end of the list, invalidation. */
class LivePagesTest {
    @TempDir
    lateinit var dir: Path

    private val anyone = UUID.randomUUID().toString()
    private val viewer = Viewer(anyone, Role.RESIDENT)

    private suspend fun storeWith(titles: List<String>): Pair<SuspendingStore, String> {
        val store = SuspendingStore.open(dir.resolve("${UUID.randomUUID()}.db").toString())
        val sid = store.createSpace(Fixtures.berlinMeta, anyone).id
        titles.forEach { store.createItem(Fixtures.post(sid, anyone, it)) }
        return store to sid
    }

    @Test
    fun `the feed in pages - cursors as keys, every item once, a null key at the end`() = runBlocking<Unit> {
        val titles = (1..12).map { "Beitrag $it" }
        val (store, sid) = storeWith(titles)
        store.use {
            val pages = store.feedPages(FeedQuery(spaceId = sid, viewer = viewer))
            val first = pages.first(5)
            assertEquals(5, first.items.size)
            val second = pages.after(first.nextKey!!, 5)
            assertEquals(5, second.items.size)
            val last = pages.after(second.nextKey!!, 5)
            assertEquals(2, last.items.size)
            assertNull(last.nextKey, "end of the list")
            val all = first.items + second.items + last.items
            assertEquals(12, all.map { it.id }.toSet().size, "no item twice")
            // Newest first, as the feed itself.
            assertEquals(store.feed(FeedQuery(spaceId = sid, viewer = viewer, limit = 50)).items.map { it.id }, all.map { it.id })
            assertFalse(pages.isInvalidated)
            pages.close()
            assertTrue(pages.isInvalidated)
        }
    }

    @Test
    fun `a write in the space invalidates the pages once, a write elsewhere does not`() = runBlocking<Unit> {
        val (store, sid) = storeWith(listOf("eins", "zwei", "drei"))
        store.use {
            val other = store.createSpace(Fixtures.berlinMeta, anyone).id
            val pages = store.feedPages(FeedQuery(spaceId = sid, viewer = viewer))
            val invalidated = CompletableDeferred<Unit>()
            var calls = 0
            pages.onInvalidated { calls++; invalidated.complete(Unit) }
            val first = pages.first(2)
            assertEquals(2, first.items.size)
            // Another space: the feed cannot change. Then one in this space (past the loaded
            // page, so only invalidation tells the pager).
            store.createItem(Fixtures.post(other, anyone, "anderswo"))
            assertFalse(pages.isInvalidated)
            store.updateItem(store.feed(FeedQuery(spaceId = sid, viewer = viewer)).items.last().id, ItemPatch(tags = listOf("neu")), anyone)
            withTimeout(10_000) { invalidated.await() }
            store.createItem(Fixtures.post(sid, anyone, "noch einer"))
            assertEquals(1, calls, "callbacks run once")
            // A source that was invalidated does not load a first page again.
            assertFailsWith<IllegalStateException> { pages.first(2) }
            // Later pages still load (the pager decides when to refresh).
            assertTrue(pages.after(first.nextKey!!, 2).items.isNotEmpty())
        }
    }

    @Test
    fun `search in pages - offsets as keys, ranked hits without repeats, end of list`() = runBlocking<Unit> {
        val (store, sid) = storeWith((1..7).map { "Flohmarkt $it" } + listOf("Kuchenbasar"))
        store.use {
            val request = SearchRequest(spaceId = sid, viewer = viewer, text = "flohmarkt")
            val pages = store.searchPages(request)
            val first = pages.first(3)
            assertEquals(3, first.nextKey)
            val second = pages.after(3, 3)
            assertEquals(6, second.nextKey)
            val last = pages.after(6, 3)
            assertEquals(1, last.items.size)
            assertNull(last.nextKey)
            val ids = (first.items + second.items + last.items).map { it.item.id }
            assertEquals(store.search(request.copy(limit = 50)).map { it.item.id }, ids)
            val invalidated = CompletableDeferred<Unit>()
            pages.onInvalidated { invalidated.complete(Unit) }
            store.createItem(Fixtures.post(sid, anyone, "Flohmarkt 8"))
            withTimeout(10_000) { invalidated.await() }
        }
    }
}
