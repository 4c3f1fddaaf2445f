// Coroutine wrappers for device to device on the local network: one session as a cold Flow of
// progress (after every frame) and its final report, and the devices nearby as a Flow of
// repeated browses. Collecting starts the session (or the browsing); cancelling the collector
// cancels it through a CancelToken and frees the native handles.
package org.quartier.flow

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.launch
import uniffi.quartier_core.NearbyDevice
import uniffi.quartier_core.PeerReport
import uniffi.quartier_domain.QuartierException
import uniffi.quartier_ffi.CancelToken
import uniffi.quartier_ffi.PeerProgressListener
import uniffi.quartier_ffi.QuartierPeerListener
import uniffi.quartier_ffi.QuartierStore
import uniffi.quartier_ffi.browseNearby
import uniffi.quartier_ffi.meetAt

/** What one device-to-device session reports: progress after every frame, then the final report. */
sealed interface PeerUpdate {
    data class Progress(val report: PeerReport) : PeerUpdate
    data class Finished(val report: PeerReport) : PeerUpdate
}

/** Runs [session] while collected: its progress, then [PeerUpdate.Finished], then the end. */
private fun peerSessionFlow(session: suspend (PeerProgressListener, CancelToken) -> PeerReport): Flow<PeerUpdate> =
    callbackFlow {
        val token = CancelToken()
        val listener = object : PeerProgressListener {
            override fun onProgress(report: PeerReport) {
                // Unlimited buffer: every frame is reported, in order, before Finished.
                trySend(PeerUpdate.Progress(report))
            }
        }
        launch {
            try {
                val report = session(listener, token)
                send(PeerUpdate.Finished(report))
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
 * Connects to the device nearby at [address] (`ip:port`, from [NearbyDevice.addresses]) and
 * syncs the opted-in spaces with it while collected: a [PeerUpdate.Progress] after every frame,
 * then one [PeerUpdate.Finished]. A failed session ends the flow with its [QuartierException]
 * (`Offline`, `Peer` with its code …); cancelling the collector ends the session at its next
 * frame, and what earlier frames brought stays.
 */
fun QuartierStore.meetAtFlow(address: String, carry: Boolean = true): Flow<PeerUpdate> =
    peerSessionFlow { listener, token -> meetAt(this@meetAtFlow, address, carry, listener, token) }

/**
 * Waits for the next device to connect to this listener and syncs with it while collected, as
 * [meetAtFlow] reports. Cancelling the collector while waiting stops waiting; the listener goes
 * on listening (collect again for the next device).
 */
fun QuartierPeerListener.meetNextFlow(carry: Boolean = true): Flow<PeerUpdate> =
    peerSessionFlow { listener, token -> meetNext(carry, listener, token) }

/** Browses again and again while collected: one list per browse, a pause between them. */
private fun nearbyFlow(pauseMs: Long, browse: suspend (CancelToken) -> List<NearbyDevice>): Flow<List<NearbyDevice>> =
    flow {
        val token = CancelToken()
        try {
            while (true) {
                emit(browse(token))
                delay(pauseMs)
            }
        } finally {
            token.cancel()
            token.close()
        }
    }

/**
 * The devices nearby that announce one of this device's opted-in spaces, while collected: each
 * browse waits up to [waitMs] for answers and emits what it found (possibly nothing), then the
 * flow pauses [pauseMs] and browses again. Ends with the [QuartierException] of a failed
 * browse. A device that announces itself collects [QuartierPeerListener.nearbyDevicesFlow]
 * instead, which leaves it out.
 */
fun QuartierStore.nearbyDevicesFlow(waitMs: Long = 3_000, pauseMs: Long = 10_000): Flow<List<NearbyDevice>> =
    nearbyFlow(pauseMs) { token -> browseNearby(this@nearbyDevicesFlow, waitMs, token) }

/** As [QuartierStore.nearbyDevicesFlow], leaving out this listener's own announcement. */
fun QuartierPeerListener.nearbyDevicesFlow(waitMs: Long = 3_000, pauseMs: Long = 10_000): Flow<List<NearbyDevice>> =
    nearbyFlow(pauseMs) { token -> browse(waitMs, token) }
