// Coroutine wrappers over the listener-and-handle API that uniffi generates: live queries and
// sync progress as cold Flows. Collecting subscribes (or starts the sync); cancelling the
// collector cancels the subscription (or the sync) and frees the native handles.
package org.quartier.flow

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.mapNotNull
import kotlinx.coroutines.launch
import uniffi.quartier_core.CounsellingChannel
import uniffi.quartier_core.CounsellingRecord
import uniffi.quartier_core.EventOccurrence
import uniffi.quartier_core.EventsQuery
import uniffi.quartier_core.FeedPage
import uniffi.quartier_core.FeedQuery
import uniffi.quartier_core.ItemDetail
import uniffi.quartier_core.LiveQuery
import uniffi.quartier_core.ModerationQueueEntry
import uniffi.quartier_core.Notification
import uniffi.quartier_core.NearbyItem
import uniffi.quartier_core.OpenOffersQuery
import uniffi.quartier_core.RadiusQuery
import uniffi.quartier_core.SearchRequest
import uniffi.quartier_core.SyncProgress
import uniffi.quartier_core.ViewportQuery
import uniffi.quartier_domain.Item
import uniffi.quartier_domain.QuartierException
import uniffi.quartier_domain.Viewer
import uniffi.quartier_ffi.CancelToken
import uniffi.quartier_ffi.LiveQueryListener
import uniffi.quartier_ffi.LiveResult
import uniffi.quartier_ffi.QuartierStore
import uniffi.quartier_ffi.QuartierSync
import uniffi.quartier_ffi.SearchHit
import uniffi.quartier_ffi.SyncEvent
import uniffi.quartier_ffi.SyncEventListener
import uniffi.quartier_ffi.SyncProgressListener
import uniffi.quartier_ffi.SyncReport

/**
 * The results of [query]: the current one soon after collection starts, then a fresh one after
 * every commit that can change it. Conflated: a slow collector sees the newest result, never a
 * backlog, and the store's notifier thread never waits for it.
 *
 * A failed evaluation (e.g. the watched item was deleted) goes to [onError] and the flow goes
 * on: the core retries the query after the next commit. A failure to subscribe at all (closed
 * store, invalid query) ends the flow with that [QuartierException].
 */
fun QuartierStore.liveQueryFlow(
    query: LiveQuery,
    onError: (QuartierException) -> Unit = {},
): Flow<LiveResult> = callbackFlow {
    val listener = object : LiveQueryListener {
        override fun onResult(result: LiveResult) {
            trySend(result)
        }

        override fun onError(error: QuartierException) = onError(error)
    }
    val subscription = subscribe(query, listener)
    awaitClose {
        // cancel() guarantees no further listener call; close() frees the handle now rather
        // than at the next GC.
        subscription.cancel()
        subscription.close()
    }
}.buffer(Channel.CONFLATED)

fun QuartierStore.feedFlow(query: FeedQuery, onError: (QuartierException) -> Unit = {}): Flow<FeedPage> =
    liveQueryFlow(LiveQuery.Feed(query), onError).mapNotNull { (it as? LiveResult.Feed)?.page }

fun QuartierStore.searchFlow(query: SearchRequest, onError: (QuartierException) -> Unit = {}): Flow<List<SearchHit>> =
    liveQueryFlow(LiveQuery.Search(query), onError).mapNotNull { (it as? LiveResult.Search)?.hits }

fun QuartierStore.viewportFlow(query: ViewportQuery, onError: (QuartierException) -> Unit = {}): Flow<List<Item>> =
    liveQueryFlow(LiveQuery.Viewport(query), onError).mapNotNull { (it as? LiveResult.Viewport)?.items }

fun QuartierStore.nearFlow(query: RadiusQuery, onError: (QuartierException) -> Unit = {}): Flow<List<NearbyItem>> =
    liveQueryFlow(LiveQuery.Near(query), onError).mapNotNull { (it as? LiveResult.Near)?.items }

fun QuartierStore.openOffersFlow(query: OpenOffersQuery, onError: (QuartierException) -> Unit = {}): Flow<List<Item>> =
    liveQueryFlow(LiveQuery.OpenOffers(query), onError).mapNotNull { (it as? LiveResult.OpenOffers)?.items }

fun QuartierStore.eventsFlow(query: EventsQuery, onError: (QuartierException) -> Unit = {}): Flow<List<EventOccurrence>> =
    liveQueryFlow(LiveQuery.Events(query), onError).mapNotNull { (it as? LiveResult.Events)?.occurrences }

fun QuartierStore.detailFlow(itemId: String, viewer: Viewer, onError: (QuartierException) -> Unit = {}): Flow<ItemDetail> =
    liveQueryFlow(LiveQuery.Detail(itemId, viewer), onError).mapNotNull { (it as? LiveResult.Detail)?.detail }

/**
 * The records of a counselling conversation (or a team's notes channel), live: after every
 * send, every sync that brought, delivered or opened one of them, and its erasure. A channel
 * this device does not hold (not received yet, or erased here or by the server) emits an empty
 * list.
 */
fun QuartierStore.counsellingFlow(channel: String, onError: (QuartierException) -> Unit = {}): Flow<List<CounsellingRecord>> =
    liveQueryFlow(LiveQuery.Counselling(channel), onError).mapNotNull { (it as? LiveResult.Counselling)?.records }

/** The counselling channels this device takes part in, live. */
fun QuartierStore.counsellingChannelsFlow(onError: (QuartierException) -> Unit = {}): Flow<List<CounsellingChannel>> =
    liveQueryFlow(LiveQuery.CounsellingChannels, onError).mapNotNull { (it as? LiveResult.CounsellingChannels)?.channels }

/**
 * The coordinators' moderation queue of a space (items with open reports), live: after every
 * report or decision made here or brought by a sync. Empty for anyone but a coordinator.
 */
fun QuartierStore.moderationQueueFlow(space: String, onError: (QuartierException) -> Unit = {}): Flow<List<ModerationQueueEntry>> =
    liveQueryFlow(LiveQuery.ModerationQueue(space), onError).mapNotNull { (it as? LiveResult.ModerationQueue)?.entries }

/** The open requests and offers of help of a space, live (every step and every write). */
fun QuartierStore.helpBoardFlow(space: String, viewer: Viewer, onError: (QuartierException) -> Unit = {}): Flow<List<Item>> =
    liveQueryFlow(LiveQuery.HelpBoard(space, viewer), onError).mapNotNull { (it as? LiveResult.HelpBoard)?.items }

/**
 * The person's notifications, newest first, live: after every one made (by a sync, a reminder)
 * or read. Turn the unread ones into local notifications.
 */
fun QuartierStore.notificationsFlow(onError: (QuartierException) -> Unit = {}): Flow<List<Notification>> =
    liveQueryFlow(LiveQuery.Notifications, onError).mapNotNull { (it as? LiveResult.Notifications)?.notifications }

/** What one [QuartierSync.syncFlow] reports: a committed page, then the final report. */
sealed interface SyncUpdate {
    data class Progress(val progress: SyncProgress) : SyncUpdate
    data class Finished(val report: SyncReport) : SyncUpdate
}

/**
 * Runs one sync (push the outbox, pull everything new) while collected: a [SyncUpdate.Progress]
 * after every committed page, then one [SyncUpdate.Finished], then the flow completes. A failed
 * sync ends the flow with its [QuartierException] (`Offline`, `Unauthorized`, …). Cancelling the
 * collector cancels the sync at its next await point; pages already committed stay.
 */
fun QuartierSync.syncFlow(): Flow<SyncUpdate> = callbackFlow {
    val token = CancelToken()
    val listener = object : SyncProgressListener {
        override fun onProgress(progress: SyncProgress) {
            // Unlimited buffer: every page is reported, in order, before Finished.
            trySend(SyncUpdate.Progress(progress))
        }
    }
    launch {
        try {
            val report = syncNow(listener, token)
            send(SyncUpdate.Finished(report))
            channel.close()
        } catch (e: QuartierException) {
            channel.close(e)
        }
    }
    awaitClose {
        token.cancel()
        token.close()
    }
}.buffer(Channel.UNLIMITED)

/**
 * Background sync while collected: every [intervalMs] (at least a second) and with backoff
 * after failures, reporting everything it does. Cancelling the collector stops it.
 */
fun QuartierSync.backgroundSyncFlow(intervalMs: Long): Flow<SyncEvent> = callbackFlow {
    val listener = object : SyncEventListener {
        override fun onEvent(event: SyncEvent) {
            trySend(event)
        }
    }
    val handle = startBackground(intervalMs, listener)
    awaitClose {
        handle.stop()
        handle.close()
    }
}.buffer(Channel.UNLIMITED)
