// Syncing when the OS grants background time. `runInBackground` is plain Swift (tested on
// Linux); `QuartierBackgroundTasks` adapts it to iOS's BGTaskScheduler and compiles only where
// the BackgroundTasks framework exists — it cannot be compiled or run on the project's Linux
// machines (see ios/README.md).
import Foundation

extension QuartierSync {
    /// One background run: a sync, then (if `transferMedia`) the queued media transfers under
    /// the current `TransferPolicy`. Cancel the Task running it to end it early — from an
    /// expiration handler — and the sync under way ends at its next await point (committed
    /// pages stay). Returns whether everything finished; never throws, for handlers that only
    /// report success or failure (call `sync()` and `transfer()` yourself to see the error).
    public func runInBackground(transferMedia: Bool = false) async -> Bool {
        do {
            _ = try await sync()
            if transferMedia { _ = try await transfer() }
            return true
        } catch {
            return false
        }
    }
}

#if canImport(BackgroundTasks) && os(iOS)
// @preconcurrency: BGTask is not marked Sendable; the handler hands it to the Task that reports
// completion (Apple's own samples call setTaskCompleted from other threads).
@preconcurrency import BackgroundTasks

/// Background sync scheduled by iOS (`BGTaskScheduler`). List the identifier under
/// `BGTaskSchedulerPermittedIdentifiers` in Info.plist and enable the "Background fetch"
/// (app refresh) or "Background processing" mode, then:
///
/// ```swift
/// // application(_:didFinishLaunchingWithOptions:), before it returns:
/// QuartierBackgroundTasks.register(identifier: "org.example.app.sync") { AppModel.shared.quartierSync }
/// // when the app goes to the background:
/// try? QuartierBackgroundTasks.schedule(identifier: "org.example.app.sync")
/// ```
public enum QuartierBackgroundTasks {
    /// Registers the handler for `identifier`. When iOS launches the task the handler schedules
    /// the next one (`every` seconds on, if given), runs `runInBackground` on the session `sync`
    /// returns (nil: nothing to do), cancels it from the task's expiration handler, and reports
    /// the result with `setTaskCompleted`. Returns false if iOS refused the registration.
    @discardableResult
    public static func register(
        identifier: String,
        processing: Bool = false,
        every interval: TimeInterval? = 15 * 60,
        transferMedia: Bool = false,
        sync: @escaping @Sendable () -> QuartierSync?
    ) -> Bool {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            if let interval { try? schedule(identifier: identifier, processing: processing, after: interval) }
            guard let session = sync() else {
                task.setTaskCompleted(success: true)
                return
            }
            let work = Task { await session.runInBackground(transferMedia: transferMedia) }
            task.expirationHandler = { work.cancel() }
            Task { task.setTaskCompleted(success: await work.value) }
        }
    }

    /// Asks iOS to run the task no earlier than `after` seconds from now: a `BGAppRefreshTask`
    /// (about 30 s of time), or with `processing` a `BGProcessingTask` (minutes, typically while
    /// charging; requires network). Submitting again replaces the pending request.
    public static func schedule(identifier: String, processing: Bool = false, after interval: TimeInterval = 15 * 60) throws {
        let request: BGTaskRequest
        if processing {
            let processingRequest = BGProcessingTaskRequest(identifier: identifier)
            processingRequest.requiresNetworkConnectivity = true
            request = processingRequest
        } else {
            request = BGAppRefreshTaskRequest(identifier: identifier)
        }
        request.earliestBeginDate = Date(timeIntervalSinceNow: interval)
        try BGTaskScheduler.shared.submit(request)
    }
}
#endif
