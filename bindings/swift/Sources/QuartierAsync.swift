// AsyncSequence wrappers over the listener-and-handle API that uniffi generates: live queries
// and sync progress for `for await` / `for try await`. Compiled in the same module as the
// generated quartier_ffi.swift (the `Quartier` target on iOS, the test program on Linux).
import Foundation

/// Forwards listener calls from the store's notifier thread into an AsyncStream.
private final class StreamLiveListener: LiveQueryListener, @unchecked Sendable {
    let continuation: AsyncStream<LiveResult>.Continuation
    let onError: @Sendable (QuartierError) -> Void

    init(_ continuation: AsyncStream<LiveResult>.Continuation, onError: @escaping @Sendable (QuartierError) -> Void) {
        self.continuation = continuation
        self.onError = onError
    }

    func onResult(result: LiveResult) {
        continuation.yield(result)
    }

    func onError(error: QuartierError) {
        onError(error)
    }
}

/// The results of a live query: the current one soon after subscribing, then a fresh one after
/// every commit that can change it. Keeps only the newest unread result, so a slow consumer
/// never sees a backlog. Ending the iteration (break, task cancellation, dropping the sequence)
/// cancels the subscription. Single-pass: iterate it once.
public struct LiveQuerySequence: AsyncSequence, Sendable {
    public typealias Element = LiveResult
    private let stream: AsyncStream<LiveResult>

    /// Subscribes at once; a closed store or an invalid query throws here. A failed
    /// evaluation later (e.g. the watched item was deleted) goes to `onError` and the sequence
    /// goes on: the core retries after the next commit.
    public init(store: QuartierStore, query: LiveQuery, onError: @escaping @Sendable (QuartierError) -> Void = { _ in }) throws {
        let (stream, continuation) = AsyncStream.makeStream(of: LiveResult.self, bufferingPolicy: .bufferingNewest(1))
        let subscription = try store.subscribe(query: query, listener: StreamLiveListener(continuation, onError: onError))
        continuation.onTermination = { _ in subscription.cancel() }
        self.stream = stream
    }

    public func makeAsyncIterator() -> AsyncStream<LiveResult>.Iterator {
        stream.makeAsyncIterator()
    }
}

extension QuartierStore {
    public func liveQuery(_ query: LiveQuery, onError: @escaping @Sendable (QuartierError) -> Void = { _ in }) throws -> LiveQuerySequence {
        try LiveQuerySequence(store: self, query: query, onError: onError)
    }

    /// The typed shortcuts below take the same `onError` as `liveQuery`: a failed evaluation
    /// (e.g. the watched item was deleted) goes there, and the sequence goes on.
    public typealias LiveErrorHandler = @Sendable (QuartierError) -> Void

    /// Feed pages of `query`, live.
    public func feedUpdates(_ query: FeedQuery, onError: @escaping LiveErrorHandler = { _ in }) throws -> AsyncCompactMapSequence<LiveQuerySequence, FeedPage> {
        try liveQuery(.feed(query: query), onError: onError).compactMap { if case let .feed(page) = $0 { return page } else { return nil } }
    }

    /// Search hits of `query`, live.
    public func searchUpdates(_ query: SearchRequest, onError: @escaping LiveErrorHandler = { _ in }) throws -> AsyncCompactMapSequence<LiveQuerySequence, [SearchHit]> {
        try liveQuery(.search(query: query), onError: onError).compactMap { if case let .search(hits) = $0 { return hits } else { return nil } }
    }

    /// Items in a map viewport, live.
    public func viewportUpdates(_ query: ViewportQuery, onError: @escaping LiveErrorHandler = { _ in }) throws -> AsyncCompactMapSequence<LiveQuerySequence, [Item]> {
        try liveQuery(.viewport(query: query), onError: onError).compactMap { if case let .viewport(items) = $0 { return items } else { return nil } }
    }

    /// Items within a radius, nearest first, live.
    public func nearUpdates(_ query: RadiusQuery, onError: @escaping LiveErrorHandler = { _ in }) throws -> AsyncCompactMapSequence<LiveQuerySequence, [NearbyItem]> {
        try liveQuery(.near(query: query), onError: onError).compactMap { if case let .near(items) = $0 { return items } else { return nil } }
    }

    /// Offers open at the query's moment, live.
    public func openOffersUpdates(_ query: OpenOffersQuery, onError: @escaping LiveErrorHandler = { _ in }) throws -> AsyncCompactMapSequence<LiveQuerySequence, [Item]> {
        try liveQuery(.openOffers(query: query), onError: onError).compactMap { if case let .openOffers(items) = $0 { return items } else { return nil } }
    }

    /// Event occurrences in a range, live.
    public func eventsUpdates(_ query: EventsQuery, onError: @escaping LiveErrorHandler = { _ in }) throws -> AsyncCompactMapSequence<LiveQuerySequence, [EventOccurrence]> {
        try liveQuery(.events(query: query), onError: onError).compactMap { if case let .events(occurrences) = $0 { return occurrences } else { return nil } }
    }

    /// One item with its history and comments, live.
    public func detailUpdates(itemId: String, viewer: Viewer, onError: @escaping LiveErrorHandler = { _ in }) throws -> AsyncCompactMapSequence<LiveQuerySequence, ItemDetail> {
        try liveQuery(.detail(itemId: itemId, viewer: viewer), onError: onError).compactMap { if case let .detail(detail) = $0 { return detail } else { return nil } }
    }
}

/// What one sync reports: a committed page, then the final report.
public enum SyncUpdate: Sendable {
    case progress(SyncProgress)
    case finished(SyncReport)
}

private final class StreamProgressListener: SyncProgressListener, @unchecked Sendable {
    let continuation: AsyncThrowingStream<SyncUpdate, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<SyncUpdate, Error>.Continuation) {
        self.continuation = continuation
    }

    func onProgress(progress: SyncProgress) {
        continuation.yield(.progress(progress))
    }
}

/// One sync (push the outbox, pull everything new) as an AsyncSequence: `.progress` after every
/// committed page, then `.finished`, then the end. A failed sync throws its `QuartierError`
/// from the iteration. Ending the iteration early cancels the sync at its next await point
/// (through a `CancelToken`); pages already committed stay. Starts when created.
public struct SyncProgressSequence: AsyncSequence, Sendable {
    public typealias Element = SyncUpdate
    private let stream: AsyncThrowingStream<SyncUpdate, Error>

    public init(sync: QuartierSync) {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: SyncUpdate.self, throwing: Error.self, bufferingPolicy: .unbounded)
        let token = CancelToken()
        let listener = StreamProgressListener(continuation)
        let task = Task {
            do {
                let report = try await sync.syncNow(progress: listener, cancel: token)
                continuation.yield(.finished(report))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in
            token.cancel()
            task.cancel()
        }
        self.stream = stream
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<SyncUpdate, Error>.Iterator {
        stream.makeAsyncIterator()
    }
}

extension QuartierSync {
    /// Runs one sync, reporting progress: `for try await update in sync.syncUpdates() { … }`.
    public func syncUpdates() -> SyncProgressSequence {
        SyncProgressSequence(sync: self)
    }
}
