// Paging 3 sources for the feed and for search: thin adapters over LivePages (shared with the
// JVM build, bindings/kotlin/src/main/kotlin/org/quartier/paging, where it is tested against the
// real library). A commit that can change the list invalidates the source; the Pager then makes
// a new one through its factory and loads from the top again.
package org.quartier.android

import androidx.paging.PagingSource
import androidx.paging.PagingState
import org.quartier.flow.SuspendingStore
import org.quartier.paging.LivePages
import org.quartier.paging.feedPages
import org.quartier.paging.searchPages
import uniffi.quartier_core.FeedQuery
import uniffi.quartier_core.SearchRequest
import uniffi.quartier_domain.Item
import uniffi.quartier_domain.QuartierException
import uniffi.quartier_ffi.SearchHit

/**
 * A [PagingSource] over [pages]: append-only (no keys backwards), refreshed from the top.
 *
 * ```kotlin
 * val feed = Pager(PagingConfig(pageSize = 20)) { store.feedPagingSource(query) }.flow
 *     .cachedIn(viewModelScope)
 * ```
 */
class QuartierPagingSource<K : Any, V : Any>(private val pages: LivePages<K, V>) : PagingSource<K, V>() {
    init {
        pages.onInvalidated { invalidate() }
        registerInvalidatedCallback { pages.close() }
    }

    override suspend fun load(params: LoadParams<K>): LoadResult<K, V> {
        if (invalid || pages.isInvalidated) return LoadResult.Invalid()
        return try {
            val key = params.key
            val page = if (key == null) pages.first(params.loadSize) else pages.after(key, params.loadSize)
            LoadResult.Page(data = page.items, prevKey = null, nextKey = page.nextKey)
        } catch (e: QuartierException) {
            LoadResult.Error(e)
        } catch (e: IllegalStateException) {
            // Invalidated while loading, or the store was closed.
            if (pages.isInvalidated) LoadResult.Invalid() else LoadResult.Error(e)
        }
    }

    /** A changed list is loaded again from its top (the newest items, the best hits). */
    override fun getRefreshKey(state: PagingState<K, V>): K? = null
}

/** The feed of [query], newest first, for a `Pager`; keys are the feed's cursors. */
fun SuspendingStore.feedPagingSource(query: FeedQuery): PagingSource<String, Item> =
    QuartierPagingSource(feedPages(query))

/** The hits of [request], best first, for a `Pager`; keys are offsets. */
fun SuspendingStore.searchPagingSource(request: SearchRequest): PagingSource<Int, SearchHit> =
    QuartierPagingSource(searchPages(request))
