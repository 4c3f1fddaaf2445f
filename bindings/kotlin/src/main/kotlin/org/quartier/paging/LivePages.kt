// Pages of the feed and of search results for a pager that loads as the list scrolls (Paging 3's
// PagingSource on Android, android/src/main/kotlin/org/quartier/android/QuartierPagingSource.kt):
// the first page comes from a live query, so every later commit that can change the list
// invalidates it. Kept free of androidx so that the JVM tests run it against the real library.
package org.quartier.paging

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.withContext
import org.quartier.flow.SuspendingStore
import uniffi.quartier_core.FeedQuery
import uniffi.quartier_core.LiveQuery
import uniffi.quartier_core.SearchRequest
import uniffi.quartier_domain.Item
import uniffi.quartier_domain.QuartierException
import uniffi.quartier_ffi.LiveQueryListener
import uniffi.quartier_ffi.LiveResult
import uniffi.quartier_ffi.LiveSubscription
import uniffi.quartier_ffi.SearchHit

/** One page: its [items], and the key of the next page, null at the end of the list. */
data class Page<K : Any, V : Any>(val items: List<V>, val nextKey: K?)

/**
 * The pages of one list, loaded one after the other from the top: [first], then [after] with
 * each page's [Page.nextKey] until it is null. Pages only append (no keys backwards); a list
 * that changed is loaded again from the top by a new [LivePages].
 *
 * [first] subscribes a live query for the first page and returns its first result; from then
 * on every commit that can change the list (a local write, a sync that brought something in
 * the space) calls the [onInvalidated] callbacks once, and the subscription ends. [close] ends
 * it too. Store calls run on the [SuspendingStore]'s dispatcher; errors are the store's
 * [QuartierException]s.
 */
class LivePages<K : Any, V : Any> internal constructor(
    private val store: SuspendingStore,
    private val firstQuery: (limit: Int) -> LiveQuery,
    private val firstPage: (result: LiveResult, limit: Int) -> Page<K, V>?,
    private val nextPage: (store: SuspendingStore, key: K, limit: Int) -> Page<K, V>,
) : AutoCloseable {
    private val lock = Any()
    private var subscription: LiveSubscription? = null
    private var invalidated = false
    private val callbacks = mutableListOf<() -> Unit>()

    /** Whether a commit changed the list (or [close] was called) since [first]. */
    val isInvalidated: Boolean get() = synchronized(lock) { invalidated }

    /** Calls [callback] once, on a library thread, when the list changed or on [close]. */
    fun onInvalidated(callback: () -> Unit) {
        val now = synchronized(lock) {
            if (!invalidated) callbacks += callback
            invalidated
        }
        if (now) callback()
    }

    /** The first [limit] entries, and from now on invalidation on every change. */
    suspend fun first(limit: Int): Page<K, V> {
        check(limit > 0) { "limit must be positive, is $limit" }
        val firstResult = CompletableDeferred<LiveResult>()
        val listener = object : LiveQueryListener {
            override fun onResult(result: LiveResult) {
                // The first evaluation is the page; any later one means a commit touched the
                // list (commits between subscribing and that evaluation are already in it).
                if (!firstResult.complete(result)) invalidate()
            }

            override fun onError(error: QuartierException) {
                if (!firstResult.completeExceptionally(error)) invalidate()
            }
        }
        val subscribed = store.call { it.subscribe(firstQuery(limit), listener) }
        val (previous, closed) = synchronized(lock) {
            val previous = subscription
            if (!invalidated) subscription = subscribed
            previous to invalidated
        }
        previous?.release()
        if (closed) {
            subscribed.release()
            throw IllegalStateException("these pages were invalidated or closed; load from a new LivePages")
        }
        val result = firstResult.await()
        return firstPage(result, limit) ?: error("a live query answered with another kind of result: $result")
    }

    /** The [limit] entries after [key] (a [Page.nextKey]). */
    suspend fun after(key: K, limit: Int): Page<K, V> {
        check(limit > 0) { "limit must be positive, is $limit" }
        return withContext(store.dispatcher) { nextPage(store, key, limit) }
    }

    /** Stops watching the list; counts as invalidation (the callbacks run). */
    override fun close() = invalidate()

    private fun invalidate() {
        val (toCall, toRelease) = synchronized(lock) {
            if (invalidated) return
            invalidated = true
            val taken = callbacks.toList().also { callbacks.clear() }
            taken to subscription.also { subscription = null }
        }
        toRelease?.release()
        toCall.forEach { it() }
    }

    private fun LiveSubscription.release() {
        cancel()
        close()
    }
}

/**
 * The feed of [query] (its `limit` and `after` are set per page): keys are the feed's cursors
 * (`FeedPage.next`), newest first.
 */
fun SuspendingStore.feedPages(query: FeedQuery): LivePages<String, Item> = LivePages(
    this,
    firstQuery = { limit -> LiveQuery.Feed(query.copy(limit = limit, after = null)) },
    firstPage = { result, _ -> (result as? LiveResult.Feed)?.page?.let { Page(it.items, it.next) } },
    nextPage = { store, cursor, limit ->
        val page = store.store.feed(query.copy(limit = limit, after = cursor))
        Page(page.items, page.next)
    },
)

/**
 * The hits of [request] (its `limit` is set per page), best first; keys are offsets. Search
 * has no cursor: the page after offset `n` asks for the first `n + limit` hits and drops `n`,
 * so scrolling far into a long result list costs more per page (results are ranked, so the
 * first `n` are the same as before unless the list changed, which invalidates it).
 */
fun SuspendingStore.searchPages(request: SearchRequest): LivePages<Int, SearchHit> = LivePages(
    this,
    firstQuery = { limit -> LiveQuery.Search(request.copy(limit = limit)) },
    firstPage = { result, limit ->
        (result as? LiveResult.Search)?.hits?.let { Page(it, if (it.size >= limit) it.size else null) }
    },
    nextPage = { store, offset, limit ->
        val hits = store.store.search(request.copy(limit = offset + limit))
        Page(hits.drop(offset), if (hits.size >= offset + limit) offset + limit else null)
    },
)
