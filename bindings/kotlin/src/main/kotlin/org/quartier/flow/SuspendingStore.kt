// Suspending store calls: the generated QuartierStore methods block their caller for SQLite work
// (sync calls are already `suspend`: uniffi's async exports). SuspendingStore runs each of them on
// a dispatcher, Dispatchers.IO unless the app passes its own, so that UI code can call them from
// any coroutine (lifecycleScope, viewModelScope) without blocking the main thread.
package org.quartier.flow

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import uniffi.quartier_core.EventsQuery
import uniffi.quartier_core.FeedQuery
import uniffi.quartier_core.ImportOptions
import uniffi.quartier_core.OpenOffersQuery
import uniffi.quartier_core.RadiusQuery
import uniffi.quartier_core.SearchRequest
import uniffi.quartier_core.ViewportQuery
import uniffi.quartier_domain.Audience
import uniffi.quartier_domain.ItemKind
import uniffi.quartier_domain.ItemPatch
import uniffi.quartier_domain.NewItem
import uniffi.quartier_domain.SpaceMeta
import uniffi.quartier_domain.Viewer
import uniffi.quartier_ffi.QuartierStore

/**
 * [store]'s calls as `suspend` functions, each run on [dispatcher] (by default
 * [Dispatchers.IO], the pool meant for blocking I/O). Same names, arguments, results and
 * [uniffi.quartier_domain.QuartierException]s as the blocking methods of [QuartierStore].
 *
 * ```kotlin
 * val store = SuspendingStore.open(context.filesDir.resolve("quartier.db").path)
 * lifecycleScope.launch { render(store.feed(FeedQuery(spaceId = sid, viewer = viewer)).items) }
 * ```
 *
 * A call that has started finishes: cancelling the coroutine makes it throw
 * `CancellationException` once the store call returns (a write is then durable all the same).
 * Live queries are already asynchronous: use [feedFlow] & co. on [store]; sync is `suspend`
 * already: `QuartierSync(store.store, url)`.
 *
 * [close] closes the store (the same as `store.close()`).
 */
class SuspendingStore(
    /** The blocking store, for the Flow wrappers, `QuartierSync` and anything not wrapped here. */
    val store: QuartierStore,
    /** Where the blocking calls run. */
    val dispatcher: CoroutineDispatcher = Dispatchers.IO,
) : AutoCloseable {
    companion object {
        /** Opens (or creates) the store at [path] on [dispatcher], see `QuartierStore.open`. */
        suspend fun open(path: String, dispatcher: CoroutineDispatcher = Dispatchers.IO): SuspendingStore =
            withContext(dispatcher) { SuspendingStore(QuartierStore.open(path), dispatcher) }

        /**
         * Opens (or creates) the store at [path] encrypted at rest with [storeKey] (the 32 raw
         * bytes kept in the Android Keystore), on [dispatcher]; see `QuartierStore.openEncrypted`.
         * A plain store is encrypted during the call, which can take a while for a large one.
         */
        suspend fun openEncrypted(
            path: String,
            storeKey: ByteArray,
            dispatcher: CoroutineDispatcher = Dispatchers.IO,
        ): SuspendingStore =
            withContext(dispatcher) { SuspendingStore(QuartierStore.openEncrypted(path, storeKey), dispatcher) }
    }

    /** Runs [block] on [dispatcher]: for the few calls not wrapped below. */
    suspend fun <T> call(block: (QuartierStore) -> T): T = withContext(dispatcher) { block(store) }

    /** Closes the store: checkpoints and releases the file (`QuartierStore.close()`). */
    override fun close() = store.close()

    // Identity, status. Return types are inferred from the generated methods on purpose.
    suspend fun path() = call { it.path() }
    suspend fun isClosed() = call { it.isClosed() }
    suspend fun devicePublicKey() = call { it.devicePublicKey() }
    suspend fun deviceActor() = call { it.deviceActor() }
    suspend fun account() = call { it.account() }
    suspend fun memberships() = call { it.memberships() }
    suspend fun syncStatus() = call { it.syncStatus() }
    suspend fun outboxLen() = call { it.outboxLen() }
    suspend fun undeliveredChanges() = call { it.undeliveredChanges() }
    suspend fun discardUndelivered(id: Long) = call { it.discardUndelivered(id) }
    suspend fun integrityCheck() = call { it.integrityCheck() }

    // Spaces.
    suspend fun createSpace(meta: SpaceMeta, by: String) = call { it.createSpace(meta, by) }
    suspend fun updateSpace(spaceId: String, meta: SpaceMeta, by: String) = call { it.updateSpace(spaceId, meta, by) }
    suspend fun space(spaceId: String) = call { it.space(spaceId) }
    suspend fun spaces() = call { it.spaces() }

    // Items.
    suspend fun createItem(item: NewItem) = call { it.createItem(item) }
    suspend fun createItemJson(json: String) = call { it.createItemJson(json) }
    suspend fun updateItem(itemId: String, patch: ItemPatch, by: String) = call { it.updateItem(itemId, patch, by) }
    suspend fun deleteItem(itemId: String, by: String) = call { it.deleteItem(itemId, by) }
    suspend fun eraseItem(itemId: String) = call { it.eraseItem(itemId) }
    suspend fun allowedActions(itemId: String, by: String) = call { it.allowedActions(itemId, by) }
    suspend fun mayCreate(spaceId: String, kind: ItemKind, audience: Audience, by: String) =
        call { it.mayCreate(spaceId, kind, audience, by) }

    // Queries.
    suspend fun feed(query: FeedQuery) = call { it.feed(query) }
    suspend fun search(query: SearchRequest) = call { it.search(query) }
    suspend fun viewport(query: ViewportQuery) = call { it.viewport(query) }
    suspend fun near(query: RadiusQuery) = call { it.near(query) }
    suspend fun openOffers(query: OpenOffersQuery) = call { it.openOffers(query) }
    suspend fun eventsBetween(query: EventsQuery) = call { it.eventsBetween(query) }
    suspend fun itemDetail(itemId: String, viewer: Viewer) = call { it.itemDetail(itemId, viewer) }

    // Media (transfers are on QuartierSync, already suspend).
    suspend fun importMediaFile(path: String, options: ImportOptions? = null) = call { it.importMediaFile(path, options) }
    suspend fun importMediaBytes(bytes: ByteArray, options: ImportOptions? = null) = call { it.importMediaBytes(bytes, options) }
    suspend fun mediaInfo(hash: String) = call { it.mediaInfo(hash) }
    suspend fun mediaFile(hash: String) = call { it.mediaFile(hash) }
    suspend fun readMedia(hash: String) = call { it.readMedia(hash) }
    suspend fun setMediaPinned(hash: String, pinned: Boolean) = call { it.setMediaPinned(hash, pinned) }
    suspend fun mediaBudget() = call { it.mediaBudget() }
    suspend fun evictMedia() = call { it.evictMedia() }
}

/** This store's calls as `suspend` functions on [dispatcher] (see [SuspendingStore]). */
fun QuartierStore.suspending(dispatcher: CoroutineDispatcher = Dispatchers.IO) = SuspendingStore(this, dispatcher)
