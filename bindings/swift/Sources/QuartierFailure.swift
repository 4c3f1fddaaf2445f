// The error in Swift's own style. uniffi 0.32's Swift generator names error cases in
// UpperCamelCase (`QuartierError.NotFound(reason:)`) and offers no option to change that: its
// `rename` table renames a case, but the error template passes every case name through
// `class_name` (UpperCamelCase) again (uniffi_bindgen 0.32 `bindings/swift/templates/
// ErrorTemplate.swift`). So the hand-written layer adds `QuartierFailure`, in the shape of
// Foundation's `URLError`: a struct with a `kind` (lowerCamelCase cases), the structured facts
// (`code`, `httpStatus`, `isRetryable`, `retryAfterSeconds`), and `catch QuartierFailure.notFound`
// patterns that match the generated error as well — so one `catch` works for the wrappers (which
// throw `QuartierFailure`) and the generated synchronous calls (which throw `QuartierError`).
import Foundation

/// An error from the Quartier library, Swift-style.
///
/// ```swift
/// do {
///     let report = try await quartier.sync()
/// } catch QuartierFailure.offline {
///     showOffline()
/// } catch let failure as QuartierFailure where failure.code == "not_a_member" {
///     showLeftSpace()
/// } catch let failure as QuartierFailure where failure.isRetryable {
///     retryLater()
/// }
/// ```
///
/// The wrappers in this package (`sync()`, `transfer()`, the sequences, `withCancelToken`)
/// throw it. The generated calls (`store.createItem(item:)` …) throw the generated
/// `QuartierError`; `catch QuartierFailure.notFound` matches those too, and
/// `QuartierFailure(error)` converts any error.
public struct QuartierFailure: Error, Equatable, Hashable, Sendable, CustomStringConvertible, LocalizedError {
    /// What went wrong; one case per case of the generated `QuartierError` (the table in
    /// docs/bindings.md says when each happens).
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case invalid, invalidCoordinates, unknownKind, malformedInput, documentTooLarge
        case malformedChange, kindChange, notFound, notPermitted, schedule, search
        case storageFull, corrupt, schemaTooNew, wrongStoreKey, storage, offline, rateLimited, unauthorized
        case deviceRevoked, notRegistered, server, protocolMismatch, malformedResponse
        case cancelled, document, media, counselling, peer, closed
        case `internal`
    }

    /// The generated error this one was made from: every field the library sent.
    public let underlying: QuartierError

    public init(_ underlying: QuartierError) {
        self.underlying = underlying
    }

    /// Converts whatever a Quartier call threw: a `QuartierFailure` stays as it is, a generated
    /// `QuartierError` is wrapped; anything else (not from this library) gives nil.
    public init?(_ error: any Error) {
        switch error {
        case let failure as QuartierFailure: self = failure
        case let generated as QuartierError: self.init(generated)
        default: return nil
        }
    }

    public var kind: Kind {
        switch underlying {
        case .Invalid: .invalid
        case .InvalidCoordinates: .invalidCoordinates
        case .UnknownKind: .unknownKind
        case .MalformedInput: .malformedInput
        case .DocumentTooLarge: .documentTooLarge
        case .MalformedChange: .malformedChange
        case .KindChange: .kindChange
        case .NotFound: .notFound
        case .NotPermitted: .notPermitted
        case .Schedule: .schedule
        case .Search: .search
        case .StorageFull: .storageFull
        case .Corrupt: .corrupt
        case .SchemaTooNew: .schemaTooNew
        case .WrongStoreKey: .wrongStoreKey
        case .Storage: .storage
        case .Offline: .offline
        case .RateLimited: .rateLimited
        case .Unauthorized: .unauthorized
        case .DeviceRevoked: .deviceRevoked
        case .NotRegistered: .notRegistered
        case .Server: .server
        case .ProtocolMismatch: .protocolMismatch
        case .MalformedResponse: .malformedResponse
        case .Cancelled: .cancelled
        case .Document: .document
        case .Media: .media
        case .Counselling: .counselling
        case .Peer: .peer
        case .Closed: .closed
        case .Internal: .internal
        }
    }

    /// The human-readable reason (English, no personal data): log it or show it.
    public var reason: String {
        switch underlying {
        case let .Invalid(reason), let .InvalidCoordinates(reason), let .UnknownKind(reason),
             let .MalformedInput(reason), let .DocumentTooLarge(reason), let .MalformedChange(reason),
             let .KindChange(reason), let .NotFound(reason), let .NotPermitted(reason, _),
             let .Schedule(reason), let .Search(reason), let .StorageFull(reason), let .Corrupt(reason),
             let .SchemaTooNew(reason), let .WrongStoreKey(reason), let .Storage(reason), let .Offline(reason),
             let .RateLimited(reason, _), let .Unauthorized(reason), let .DeviceRevoked(reason),
             let .NotRegistered(reason), let .Server(reason, _, _), let .ProtocolMismatch(reason),
             let .MalformedResponse(reason), let .Cancelled(reason), let .Document(reason),
             let .Media(reason, _), let .Counselling(reason, _), let .Peer(reason, _), let .Closed(reason),
             let .Internal(reason):
            reason
        }
    }

    /// A stable snake_case code to branch on: the kind's name (`not_found`, `offline` …) or the
    /// finer code the library sent (the server's `not_a_member`, the media case …).
    public var code: String { underlying.errorCode() }

    /// The server's HTTP status where the error is its answer (`server`, `unauthorized` 401,
    /// `rateLimited` 429), else nil.
    public var httpStatus: Int? { underlying.httpStatus().map { Int($0) } }

    /// Whether the same call, unchanged, can succeed later (`offline`, `rateLimited`,
    /// `storageFull`, a 5xx/408/429 from the server).
    public var isRetryable: Bool { underlying.isRetryable() }

    /// For `rateLimited`: how long the server asked this device to wait.
    public var retryAfterSeconds: Int? {
        if case let .RateLimited(_, seconds) = underlying { return Int(clamping: seconds) }
        return nil
    }

    public var description: String { "\(kind) (\(code)): \(reason)" }
    public var errorDescription: String? { reason }

    public static func == (lhs: QuartierFailure, rhs: QuartierFailure) -> Bool { lhs.underlying == rhs.underlying }
    public func hash(into hasher: inout Hasher) { hasher.combine(underlying) }
}

/// `catch QuartierFailure.notFound` / `case QuartierFailure.offline:` — matches a
/// `QuartierFailure` or a generated `QuartierError` of that kind.
public func ~= (kind: QuartierFailure.Kind, error: any Error) -> Bool {
    QuartierFailure(error)?.kind == kind
}

extension QuartierFailure {
    // The kinds as members of the error type, for `catch QuartierFailure.notFound` (as
    // `catch URLError.cancelled` works for URLError's codes).
    public static let invalid = Kind.invalid
    public static let invalidCoordinates = Kind.invalidCoordinates
    public static let unknownKind = Kind.unknownKind
    public static let malformedInput = Kind.malformedInput
    public static let documentTooLarge = Kind.documentTooLarge
    public static let malformedChange = Kind.malformedChange
    public static let kindChange = Kind.kindChange
    public static let notFound = Kind.notFound
    public static let notPermitted = Kind.notPermitted
    public static let schedule = Kind.schedule
    public static let search = Kind.search
    public static let storageFull = Kind.storageFull
    public static let corrupt = Kind.corrupt
    public static let schemaTooNew = Kind.schemaTooNew
    public static let wrongStoreKey = Kind.wrongStoreKey
    public static let storage = Kind.storage
    public static let offline = Kind.offline
    public static let rateLimited = Kind.rateLimited
    public static let unauthorized = Kind.unauthorized
    public static let deviceRevoked = Kind.deviceRevoked
    public static let notRegistered = Kind.notRegistered
    public static let server = Kind.server
    public static let protocolMismatch = Kind.protocolMismatch
    public static let malformedResponse = Kind.malformedResponse
    public static let cancelled = Kind.cancelled
    public static let document = Kind.document
    public static let media = Kind.media
    public static let counselling = Kind.counselling
    public static let peer = Kind.peer
    public static let closed = Kind.closed
    public static let `internal` = Kind.internal
}

extension QuartierError {
    /// The same error, Swift-style.
    public var failure: QuartierFailure { QuartierFailure(self) }
}

/// Rethrows `error` as a `QuartierFailure` when it came from the library.
func swiftStyle(_ error: any Error) -> any Error {
    QuartierFailure(error) ?? error
}
