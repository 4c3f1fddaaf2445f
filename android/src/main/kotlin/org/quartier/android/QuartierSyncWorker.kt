// Background sync scheduled by the OS: a WorkManager CoroutineWorker that runs one sync (and,
// if asked, the media transfer queue) with the app's own QuartierSync, and helpers to enqueue it
// once or periodically with a network constraint.
package org.quartier.android

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.Data
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import androidx.work.workDataOf
import uniffi.quartier_domain.QuartierException
import uniffi.quartier_ffi.QuartierSync
import java.util.concurrent.TimeUnit

/**
 * Implemented by the app's `Application`: the one [QuartierSync] of the process, made from the
 * store the app's screens use (a second store on the same file would not update their live
 * queries).
 */
interface QuartierSyncProvider {
    fun quartierSync(): QuartierSync
}

/**
 * One sync per run: push the outbox, pull everything new; then the media queue if the work was
 * enqueued with `transferMedia = true`. Result: success with the counts, retry for what can
 * succeed later (`Offline`, a busy server: `QuartierException.isRetryable()`), failure with the
 * error's code otherwise (not registered, device revoked …). Stopping the work (constraints
 * lost, cancelled) cancels the running sync; committed pages stay.
 */
class QuartierSyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    companion object {
        const val KEY_TRANSFER_MEDIA = "quartier.transfer_media"
        const val KEY_PUSHED = "quartier.pushed"
        const val KEY_RECEIVED = "quartier.received"
        const val KEY_ERROR_CODE = "quartier.error_code"
    }

    override suspend fun doWork(): Result {
        val provider = applicationContext as? QuartierSyncProvider
            ?: return Result.failure(workDataOf(KEY_ERROR_CODE to "no_sync_provider"))
        return try {
            val sync = provider.quartierSync()
            val report = sync.syncNow()
            if (inputData.getBoolean(KEY_TRANSFER_MEDIA, false)) sync.transferMedia()
            Result.success(
                workDataOf(KEY_PUSHED to report.pushed.toLong(), KEY_RECEIVED to report.received.toLong()),
            )
        } catch (e: QuartierException) {
            if (e.isRetryable()) Result.retry() else Result.failure(workDataOf(KEY_ERROR_CODE to e.errorCode()))
        }
    }
}

/** Enqueues [QuartierSyncWorker] as unique work: call from `Application.onCreate` or after a write. */
object QuartierSyncWork {
    const val PERIODIC = "quartier-sync-periodic"
    const val ONCE = "quartier-sync-once"

    private fun constraints(unmeteredOnly: Boolean) = Constraints.Builder()
        .setRequiredNetworkType(if (unmeteredOnly) NetworkType.UNMETERED else NetworkType.CONNECTED)
        .build()

    private fun input(transferMedia: Boolean): Data =
        workDataOf(QuartierSyncWorker.KEY_TRANSFER_MEDIA to transferMedia)

    /**
     * Syncs every [intervalMinutes] (WorkManager's minimum is 15) while a network is up
     * ([unmeteredOnly]: Wi-Fi and the like only), with exponential backoff after retries. An
     * existing schedule is kept unless [replace].
     */
    fun enqueuePeriodic(
        context: Context,
        intervalMinutes: Long = 60,
        unmeteredOnly: Boolean = false,
        transferMedia: Boolean = false,
        replace: Boolean = false,
    ) {
        val request = PeriodicWorkRequestBuilder<QuartierSyncWorker>(intervalMinutes, TimeUnit.MINUTES)
            .setConstraints(constraints(unmeteredOnly))
            .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
            .setInputData(input(transferMedia))
            .build()
        val policy = if (replace) ExistingPeriodicWorkPolicy.UPDATE else ExistingPeriodicWorkPolicy.KEEP
        WorkManager.getInstance(context).enqueueUniquePeriodicWork(PERIODIC, policy, request)
    }

    /** One sync as soon as a network is up; a pending one-off sync is replaced by this one. */
    fun enqueueOnce(context: Context, unmeteredOnly: Boolean = false, transferMedia: Boolean = false) {
        val request = OneTimeWorkRequestBuilder<QuartierSyncWorker>()
            .setConstraints(constraints(unmeteredOnly))
            .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
            .setInputData(input(transferMedia))
            .build()
        WorkManager.getInstance(context).enqueueUniqueWork(ONCE, ExistingWorkPolicy.REPLACE, request)
    }

    /** Cancels the periodic and the one-off sync. */
    fun cancel(context: Context) {
        val work = WorkManager.getInstance(context)
        work.cancelUniqueWork(PERIODIC)
        work.cancelUniqueWork(ONCE)
    }
}
