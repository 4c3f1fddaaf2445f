// Device to device on the local network in Swift concurrency: sessions that end with their Task,
// one session as an AsyncSequence of progress (after every frame) and its final report, and the
// devices nearby as an AsyncSequence of repeated browses. The rules of QuartierAsync.swift hold:
// cancelling the Task cancels the call (through a `CancelToken`), sequences start when iterated
// and stop when the iteration ends, listeners are genuinely `Sendable`, errors are
// `QuartierFailure`. (Transports the app carries — Bluetooth, Wi-Fi Direct, QR codes — use the
// synchronous `QuartierPeerSession` directly: `firstFrame()`, then `receive(frame:)` per frame.)
import Foundation

// MARK: - One session

/// What one device-to-device session reports: progress after every frame received, then the
/// final report.
public enum PeerUpdate: Sendable {
    case progress(PeerReport)
    case finished(PeerReport)
}

/// Calls a `@Sendable` closure after every frame of a session.
final class ClosurePeerProgressListener: PeerProgressListener {
    let body: @Sendable (PeerReport) -> Void
    init(_ body: @escaping @Sendable (PeerReport) -> Void) { self.body = body }
    func onProgress(report: PeerReport) { body(report) }
}

final class StreamPeerProgressListener: PeerProgressListener {
    let continuation: AsyncThrowingStream<PeerUpdate, any Error>.Continuation
    init(_ continuation: AsyncThrowingStream<PeerUpdate, any Error>.Continuation) { self.continuation = continuation }
    func onProgress(report: PeerReport) { continuation.yield(.progress(report)) }
}

/// One local-network session as an AsyncSequence: `.progress` after every frame, then
/// `.finished`, then the end; a failed session throws its `QuartierFailure` (`.offline`, `.peer`
/// with its code …) from the loop. The session starts when iteration starts (one per
/// `makeAsyncIterator()`); ending the iteration early (break, task cancelled) cancels it through
/// a `CancelToken` — while waiting for a device, the listener goes on listening — and what
/// earlier frames brought stays.
public struct PeerSessionSequence: AsyncSequence, Sendable {
    public typealias Element = PeerUpdate
    let session: @Sendable (any PeerProgressListener, CancelToken) async throws -> PeerReport

    public func makeAsyncIterator() -> AsyncThrowingStream<PeerUpdate, any Error>.Iterator {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: PeerUpdate.self, throwing: (any Error).self)
        let token = CancelToken()
        let listener = StreamPeerProgressListener(continuation)
        let session = self.session
        Task {
            do {
                let report = try await session(listener, token)
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

extension QuartierStore {
    /// Connects to the device nearby at `address` (`ip:port`, from `NearbyDevice.addresses`) and
    /// syncs the opted-in spaces with it, ended by cancelling the Task. `onProgress` runs on a
    /// library thread after every frame.
    public func meet(at address: String, carry: Bool = true, onProgress: (@Sendable (PeerReport) -> Void)? = nil) async throws -> PeerReport {
        let listener = onProgress.map(ClosurePeerProgressListener.init)
        return try await withCancelToken { try await meetAt(store: self, address: address, carry: carry, progress: listener, cancel: $0) }
    }

    /// The same session as a sequence: `for try await update in store.meetUpdates(at: address) { … }`.
    public func meetUpdates(at address: String, carry: Bool = true) -> PeerSessionSequence {
        PeerSessionSequence { listener, token in
            try await meetAt(store: self, address: address, carry: carry, progress: listener, cancel: token)
        }
    }
}

extension QuartierPeerListener {
    /// Waits for the next device to connect and syncs with it, ended by cancelling the Task (the
    /// listener goes on listening). `onProgress` runs on a library thread after every frame.
    public func meet(carry: Bool = true, onProgress: (@Sendable (PeerReport) -> Void)? = nil) async throws -> PeerReport {
        let listener = onProgress.map(ClosurePeerProgressListener.init)
        return try await withCancelToken { try await self.meetNext(carry: carry, progress: listener, cancel: $0) }
    }

    /// The next device's session as a sequence: `for try await update in listener.meetUpdates() { … }`.
    public func meetUpdates(carry: Bool = true) -> PeerSessionSequence {
        PeerSessionSequence { listener, token in
            try await self.meetNext(carry: carry, progress: listener, cancel: token)
        }
    }
}

// MARK: - Devices nearby

/// The devices nearby that announce one of this device's opted-in spaces, browsed again and
/// again while iterated: each browse waits up to `wait` seconds for answers and yields what it
/// found (possibly nothing), then the sequence pauses `every` seconds. Keeps only the newest
/// unread list. Starts when iterated; the end of the iteration stops browsing; a failed browse
/// is thrown from the loop.
public struct NearbyDevicesSequence: AsyncSequence, Sendable {
    public typealias Element = [NearbyDevice]
    let browse: @Sendable (CancelToken) async throws -> [NearbyDevice]
    let pause: TimeInterval

    public func makeAsyncIterator() -> AsyncThrowingStream<[NearbyDevice], any Error>.Iterator {
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: [NearbyDevice].self, throwing: (any Error).self, bufferingPolicy: .bufferingNewest(1))
        let token = CancelToken()
        let (browse, pause) = (self.browse, Swift.min(Swift.max(0, self.pause), 86_400))
        let task = Task {
            do {
                while !Task.isCancelled {
                    continuation.yield(try await browse(token))
                    try await Task.sleep(nanoseconds: UInt64(pause * 1e9))
                }
                continuation.finish()
            } catch is CancellationError {
                continuation.finish()
            } catch {
                continuation.finish(throwing: swiftStyle(error))
            }
        }
        continuation.onTermination = { _ in
            token.cancel()
            task.cancel()
        }
        return stream.makeAsyncIterator()
    }
}

/// Milliseconds of a wait in seconds, for the generated calls (at most a day).
private func milliseconds(_ seconds: TimeInterval) -> Int64 {
    Int64(Swift.min(Swift.max(0, seconds), 86_400) * 1000)
}

extension QuartierStore {
    /// `for try await devices in store.nearbyDevices() { … }`; see `NearbyDevicesSequence`. A
    /// device that announces itself browses through its listener instead, which leaves it out.
    public func nearbyDevices(wait: TimeInterval = 3, every pause: TimeInterval = 10) -> NearbyDevicesSequence {
        NearbyDevicesSequence(browse: { try await browseNearby(store: self, waitMs: milliseconds(wait), cancel: $0) }, pause: pause)
    }
}

extension QuartierPeerListener {
    /// As `QuartierStore.nearbyDevices`, leaving out this listener's own announcement.
    public func nearbyDevices(wait: TimeInterval = 3, every pause: TimeInterval = 10) -> NearbyDevicesSequence {
        NearbyDevicesSequence(browse: { try await self.browse(waitMs: milliseconds(wait), cancel: $0) }, pause: pause)
    }
}
