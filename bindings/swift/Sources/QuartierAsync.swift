// Swift concurrency over the listener-and-handle API that uniffi generates: calls that end when
// their Task is cancelled, live queries, one sync and background sync as AsyncSequences.
// Compiled in the same module as the generated Swift (the `Quartier` target on iOS, the test
// program on Linux). Everything here throws `QuartierFailure` (QuartierFailure.swift).
//
// Rules the types below keep:
// - Cancelling the Task cancels the call: uniffi 0.32's generated `async` methods wait on a
//   continuation that ignores Task cancellation, so every call here runs with a `CancelToken`
//   that `withTaskCancellationHandler` cancels; the call then ends with
//   `QuartierFailure.cancelled` at its next await point (as URLSession ends with
//   `URLError.cancelled`).
// - Sequences start when iterated: creating one does nothing; `makeAsyncIterator()` subscribes
//   (or starts the sync), and the end of the iteration — `break`, an error, the iterating task
//   cancelled, the iterator dropped — unsubscribes (or cancels).
// - Listeners are genuinely `Sendable`: final classes with only `let` properties of Sendable
//   types (an `AsyncStream.Continuation`, a `@Sendable` closure), no `@unchecked`.
import Foundation

// MARK: - Calls that end with their Task

/// Runs `operation` with a fresh `CancelToken` that is cancelled as soon as the current Task is
/// cancelled (also if it already was), and converts the library's errors to `QuartierFailure`.
/// For any generated async call that takes a token:
///
/// ```swift
/// let code = try await withCancelToken { token in
///     try await quartier.createInvite(spaceId: sid, role: .volunteer, expiresAtMs: until, maxUses: 5, cancel: token)
/// }
/// ```
public func withCancelToken<T: Sendable>(_ operation: @Sendable (CancelToken) async throws -> T) async throws -> T {
    let token = CancelToken()
    do {
        return try await withTaskCancellationHandler {
            try await operation(token)
        } onCancel: {
            token.cancel()
        }
    } catch {
        throw swiftStyle(error)
    }
}

/// Calls a `@Sendable` closure for every progress report of one sync.
final class ClosureProgressListener: SyncProgressListener {
    let body: @Sendable (SyncProgress) -> Void
    init(_ body: @escaping @Sendable (SyncProgress) -> Void) { self.body = body }
    func onProgress(progress: SyncProgress) { body(progress) }
}

/// Calls a `@Sendable` closure for every transfer event.
final class ClosureTransferListener: TransferProgressListener {
    let body: @Sendable (TransferEvent) -> Void
    init(_ body: @escaping @Sendable (TransferEvent) -> Void) { self.body = body }
    func onTransfer(event: TransferEvent) { body(event) }
}

extension QuartierSync {
    /// One sync (push the outbox, pull everything new), ended by cancelling the Task.
    /// `onProgress` runs on a library thread after every committed page. Pages committed before
    /// a cancellation stay.
    public func sync(onProgress: (@Sendable (SyncProgress) -> Void)? = nil) async throws -> SyncReport {
        let listener = onProgress.map(ClosureProgressListener.init)
        return try await withCancelToken { try await self.syncNow(progress: listener, cancel: $0) }
    }

    /// Moves every queued media file (thumbnails, then previews, then originals; uploads first),
    /// ended by cancelling the Task; an interrupted file resumes at its last chunk next time.
    public func transfer(onEvent: (@Sendable (TransferEvent) -> Void)? = nil) async throws -> TransferReport {
        let listener = onEvent.map(ClosureTransferListener.init)
        return try await withCancelToken { try await self.transferMedia(progress: listener, cancel: $0) }
    }

    /// Downloads one media file now, whatever the transfer policy, and returns its path.
    public func fetch(media hash: String, onEvent: (@Sendable (TransferEvent) -> Void)? = nil) async throws -> String {
        let listener = onEvent.map(ClosureTransferListener.init)
        return try await withCancelToken { try await self.fetchMedia(hash: hash, progress: listener, cancel: $0) }
    }

    /// Uploads one media file now.
    public func upload(media hash: String, onEvent: (@Sendable (TransferEvent) -> Void)? = nil) async throws {
        let listener = onEvent.map(ClosureTransferListener.init)
        try await withCancelToken { try await self.uploadMedia(hash: hash, progress: listener, cancel: $0) }
    }
}

// MARK: - Live queries

/// Forwards listener calls from the store's notifier thread into the iterator's stream.
final class StreamLiveListener: LiveQueryListener {
    let continuation: AsyncThrowingStream<LiveResult, any Error>.Continuation
    let onError: @Sendable (QuartierFailure) -> Void

    init(_ continuation: AsyncThrowingStream<LiveResult, any Error>.Continuation, onError: @escaping @Sendable (QuartierFailure) -> Void) {
        self.continuation = continuation
        self.onError = onError
    }

    func onResult(result: LiveResult) {
        continuation.yield(result)
    }

    func onError(error: QuartierError) {
        onError(error.failure)
    }
}

/// The results of a live query: the current one soon after iteration starts, then a fresh one
/// after every commit that can change it. Keeps only the newest unread result, so a slow
/// consumer never sees a backlog.
///
/// Creating the sequence subscribes nothing. Each `makeAsyncIterator()` subscribes (so two
/// loops over one sequence are two subscriptions); a failure to subscribe (closed store,
/// invalid query) is thrown from the loop's first `next()`. The end of the iteration — leaving
/// the loop, the task cancelled, the iterator dropped — cancels the subscription.
public struct LiveQuerySequence: AsyncSequence, Sendable {
    public typealias Element = LiveResult
    public typealias LiveErrorHandler = @Sendable (QuartierFailure) -> Void

    let store: QuartierStore
    let query: LiveQuery
    let onError: LiveErrorHandler

    /// `onError` gets a failed evaluation (e.g. the watched item was erased); the sequence goes
    /// on and the core evaluates again after the next commit.
    public init(store: QuartierStore, query: LiveQuery, onError: @escaping LiveErrorHandler = { _ in }) {
        self.store = store
        self.query = query
        self.onError = onError
    }

    public func makeAsyncIterator() -> Iterator {
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: LiveResult.self, throwing: (any Error).self, bufferingPolicy: .bufferingNewest(1))
        do {
            let subscription = try store.subscribe(query: query, listener: StreamLiveListener(continuation, onError: onError))
            continuation.onTermination = { _ in subscription.cancel() }
        } catch {
            continuation.finish(throwing: swiftStyle(error))
        }
        return Iterator(base: stream.makeAsyncIterator())
    }

    public struct Iterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<LiveResult, any Error>.Iterator

        public mutating func next() async throws -> LiveResult? {
            try await base.next()
        }
    }
}

extension QuartierStore {
    public typealias LiveErrorHandler = LiveQuerySequence.LiveErrorHandler

    /// `for try await result in store.liveQuery(.feed(q)) { … }`; see `LiveQuerySequence`.
    public func liveQuery(_ query: LiveQuery, onError: @escaping LiveErrorHandler = { _ in }) -> LiveQuerySequence {
        LiveQuerySequence(store: self, query: query, onError: onError)
    }

    // The typed shortcuts take the same `onError` as `liveQuery`: a failed evaluation (e.g. the
    // watched item was erased) goes there, and the sequence goes on.

    /// Feed pages of `query`, live.
    public func feedUpdates(_ query: FeedQuery, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, FeedPage> {
        liveQuery(.feed(query), onError: onError).compactMap { if case let .feed(page) = $0 { page } else { nil } }
    }

    /// Search hits of `query`, live.
    public func searchUpdates(_ query: SearchRequest, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [SearchHit]> {
        liveQuery(.search(query), onError: onError).compactMap { if case let .search(hits) = $0 { hits } else { nil } }
    }

    /// Items in a map viewport, live.
    public func viewportUpdates(_ query: ViewportQuery, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [Item]> {
        liveQuery(.viewport(query), onError: onError).compactMap { if case let .viewport(items) = $0 { items } else { nil } }
    }

    /// Items within a radius, nearest first, live.
    public func nearUpdates(_ query: RadiusQuery, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [NearbyItem]> {
        liveQuery(.near(query), onError: onError).compactMap { if case let .near(items) = $0 { items } else { nil } }
    }

    /// Offers open at the query's moment, live.
    public func openOffersUpdates(_ query: OpenOffersQuery, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [Item]> {
        liveQuery(.openOffers(query), onError: onError).compactMap { if case let .openOffers(items) = $0 { items } else { nil } }
    }

    /// Event occurrences in a range, live.
    public func eventsUpdates(_ query: EventsQuery, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [EventOccurrence]> {
        liveQuery(.events(query), onError: onError).compactMap { if case let .events(occurrences) = $0 { occurrences } else { nil } }
    }

    /// One item with its history and comments, live.
    public func detailUpdates(itemId: String, viewer: Viewer, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, ItemDetail> {
        liveQuery(.detail(itemId: itemId, viewer: viewer), onError: onError).compactMap { if case let .detail(detail) = $0 { detail } else { nil } }
    }

    /// A counselling conversation's (or team notes channel's) records, live: after every send,
    /// every sync that brought, delivered or opened one, and its erasure. A channel this device
    /// does not hold (not received yet, or erased) yields `[]`.
    public func counsellingUpdates(channel: String, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [CounsellingRecord]> {
        liveQuery(.counselling(channel: channel), onError: onError).compactMap { if case let .counselling(records) = $0 { records } else { nil } }
    }

    /// The counselling channels this device takes part in, live.
    public func counsellingChannelUpdates(onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [CounsellingChannel]> {
        liveQuery(.counsellingChannels, onError: onError).compactMap { if case let .counsellingChannels(channels) = $0 { channels } else { nil } }
    }

    /// The coordinators' moderation queue of a space (items with open reports), live: after
    /// every report or decision made here or brought by a sync. Empty for anyone else.
    public func moderationQueueUpdates(spaceId: SpaceId, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [ModerationQueueEntry]> {
        liveQuery(.moderationQueue(space: spaceId), onError: onError).compactMap { if case let .moderationQueue(entries) = $0 { entries } else { nil } }
    }

    /// The open requests and offers of help of a space, live: after every step made here or
    /// brought by a sync, and every item written.
    public func helpBoardUpdates(spaceId: SpaceId, viewer: Viewer, onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [Item]> {
        liveQuery(.helpBoard(space: spaceId, viewer: viewer), onError: onError).compactMap { if case let .helpBoard(items) = $0 { items } else { nil } }
    }

    /// The person's notifications, newest first, live: after every one made (by a sync, a
    /// reminder) or read. Turn the unread ones into local notifications.
    public func notificationUpdates(onError: @escaping LiveErrorHandler = { _ in }) -> AsyncCompactMapSequence<LiveQuerySequence, [Notification]> {
        liveQuery(.notifications, onError: onError).compactMap { if case let .notifications(notifications) = $0 { notifications } else { nil } }
    }
}

// MARK: - One sync as a sequence

/// What one sync reports: a committed page, then the final report.
public enum SyncUpdate: Sendable {
    case progress(SyncProgress)
    case finished(SyncReport)
}

final class StreamProgressListener: SyncProgressListener {
    let continuation: AsyncThrowingStream<SyncUpdate, any Error>.Continuation
    init(_ continuation: AsyncThrowingStream<SyncUpdate, any Error>.Continuation) { self.continuation = continuation }
    func onProgress(progress: SyncProgress) { continuation.yield(.progress(progress)) }
}

/// One sync (push the outbox, pull everything new) as an AsyncSequence: `.progress` after every
/// committed page, then `.finished`, then the end; a failed sync throws its `QuartierFailure`
/// from the loop. The sync starts when iteration starts (one sync per `makeAsyncIterator()`);
/// ending the iteration early (break, task cancelled) cancels it through a `CancelToken`, and
/// pages already committed stay.
public struct SyncProgressSequence: AsyncSequence, Sendable {
    public typealias Element = SyncUpdate
    let sync: QuartierSync

    public init(sync: QuartierSync) { self.sync = sync }

    public func makeAsyncIterator() -> AsyncThrowingStream<SyncUpdate, any Error>.Iterator {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: SyncUpdate.self, throwing: (any Error).self)
        let token = CancelToken()
        let listener = StreamProgressListener(continuation)
        let sync = self.sync
        Task {
            do {
                let report = try await sync.syncNow(progress: listener, cancel: token)
                continuation.yield(.finished(report))
                continuation.finish()
            } catch {
                continuation.finish(throwing: swiftStyle(error))
            }
        }
        continuation.onTermination = { _ in token.cancel() }
        return stream.makeAsyncIterator()
    }
}

extension QuartierSync {
    /// One sync, reporting progress: `for try await update in quartier.syncUpdates() { … }`.
    public func syncUpdates() -> SyncProgressSequence {
        SyncProgressSequence(sync: self)
    }
}

// MARK: - Background sync as a sequence

final class StreamSyncEventListener: SyncEventListener {
    let continuation: AsyncStream<SyncEvent>.Continuation
    init(_ continuation: AsyncStream<SyncEvent>.Continuation) { self.continuation = continuation }

    func onEvent(event: SyncEvent) {
        continuation.yield(event)
        // Background sync has given up (not registered, revoked…): nothing follows.
        if case .stopped = event { continuation.finish() }
    }
}

/// Background sync while iterated: syncs every `interval` (at least one second) and after
/// `syncSoon()`, backing off exponentially after failures, and yields every `SyncEvent`
/// (`.started`, `.progress`, `.finished`, `.failed` with the retry delay). It ends after a
/// `.stopped` event (a failure retrying cannot fix, e.g. this device was revoked).
///
/// Creating the sequence starts nothing; `makeAsyncIterator()` starts background sync (a
/// failure to start is thrown from the first `next()`), and the end of the iteration — break,
/// the task cancelled, the iterator dropped — stops it (a sync under way is abandoned;
/// committed pages stay). This runs while the app runs; for syncs the OS schedules while the
/// app is suspended see `QuartierBackgroundTasks` (iOS) or call `sync()` from your own job.
public struct BackgroundSyncSequence: AsyncSequence, Sendable {
    public typealias Element = SyncEvent
    let sync: QuartierSync
    let interval: TimeInterval

    public init(sync: QuartierSync, interval: TimeInterval) {
        self.sync = sync
        self.interval = interval
    }

    public func makeAsyncIterator() -> Iterator {
        let (stream, continuation) = AsyncStream.makeStream(of: SyncEvent.self, bufferingPolicy: .unbounded)
        do {
            // `.init`: the generated parameter's integer type, whichever it is; at most a year.
            let milliseconds = Swift.min(Swift.max(0, interval), 365 * 86_400) * 1000
            let handle = try sync.startBackground(intervalMs: .init(milliseconds), listener: StreamSyncEventListener(continuation))
            continuation.onTermination = { _ in handle.stop() }
            return Iterator(base: stream.makeAsyncIterator(), failure: nil)
        } catch {
            continuation.finish()
            return Iterator(base: stream.makeAsyncIterator(), failure: swiftStyle(error))
        }
    }

    public struct Iterator: AsyncIteratorProtocol {
        var base: AsyncStream<SyncEvent>.Iterator
        var failure: (any Error)?

        public mutating func next() async throws -> SyncEvent? {
            if let failure {
                self.failure = nil
                throw failure
            }
            return await base.next()
        }
    }
}

extension QuartierSync {
    /// `for try await event in quartier.backgroundSyncEvents(every: 300) { … }`; see
    /// `BackgroundSyncSequence`.
    public func backgroundSyncEvents(every interval: TimeInterval) -> BackgroundSyncSequence {
        BackgroundSyncSequence(sync: self, interval: interval)
    }
}
