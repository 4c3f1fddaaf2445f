// The bindings scenario in Swift, against the real library and a real quartier-server
// (QUARTIER_SERVER_URL). Each check throws or traps on failure; the last line is the summary
// "swift: N passed, M failed" that CI reads. Compiled in Swift 6 language mode (complete
// concurrency checking) together with the generated Swift and the wrappers, so the wrappers'
// and these listeners' Sendable claims are checked by the compiler.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking  // URLSession on Linux (the calendar feed over HTTP)
#endif
import Synchronization

struct CheckFailure: Error, CustomStringConvertible {
    let description: String
}

func check(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) throws {
    if !condition { throw CheckFailure(description: "line \(line): \(message())") }
}

/// Runs `body` and requires it to throw a library error of `kind` (generated `QuartierError`
/// or `QuartierFailure`, both matched by the `QuartierFailure.Kind` pattern); returns it.
@discardableResult
func expectError<T>(_ what: String, _ kind: QuartierFailure.Kind, _ body: () throws -> T) throws -> QuartierFailure {
    do {
        _ = try body()
    } catch {
        guard let failure = QuartierFailure(error), failure.kind == kind else {
            throw CheckFailure(description: "\(what): wrong error \(error)")
        }
        return failure
    }
    throw CheckFailure(description: "\(what): no error thrown")
}

/// The async form of `expectError`.
@discardableResult
func expectFailure<T>(_ what: String, _ kind: QuartierFailure.Kind, _ body: () async throws -> T) async throws -> QuartierFailure {
    do {
        _ = try await body()
    } catch let failure as QuartierFailure {
        try check(failure.kind == kind, "\(what): wrong error \(failure)")
        return failure
    } catch {
        throw CheckFailure(description: "\(what): \(error) is not a QuartierFailure")
    }
    throw CheckFailure(description: "\(what): no error thrown")
}

/// A thread-safe list (for listeners and handlers called on library threads).
final class Recorder<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])
    func add(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass; returns whether it held.
func eventually(_ seconds: Double, _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    return try condition()
}

/// Waits for the first element satisfying `predicate`, or fails after `seconds`.
func firstWithin<S: AsyncSequence & Sendable>(_ seconds: Double, _ sequence: S, where predicate: @escaping @Sendable (S.Element) -> Bool) async throws -> S.Element where S.Element: Sendable {
    try await withThrowingTaskGroup(of: S.Element?.self) { group in
        group.addTask {
            for try await element in sequence where predicate(element) { return element }
            return nil
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        guard let element = first else { throw CheckFailure(description: "nothing matching within \(seconds) s") }
        return element
    }
}

let serverURL = ProcessInfo.processInfo.environment["QUARTIER_SERVER_URL"] ?? ""
let workDir = FileManager.default.temporaryDirectory.appendingPathComponent("quartier-swift-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
func openStore(_ name: String) throws -> QuartierStore {
    try QuartierStore.open(path: workDir.appendingPathComponent("\(name).db").path)
}
let anyone = UUID().uuidString.lowercased()
let meta = SpaceMeta(name: ["de": "Nordstadt"], timeZone: "Europe/Berlin", defaultLanguage: "de")

func content(_ title: String, _ details: ItemDetails, location: Location? = nil) -> ItemContent {
    ItemContent(title: ["de": title], location: location, audience: .everyone, status: .published, details: details)
}
func post(_ space: String, _ author: String, _ title: String) -> NewItem {
    NewItem(spaceId: space, author: author, content: content(title, .post(Post(postType: .news))))
}
func place(_ space: String, _ author: String, _ title: String, _ lat: Double, _ lon: Double) -> NewItem {
    NewItem(spaceId: space, author: author, content: content(title, .place(Place(category: "meeting")),
                                                            location: Location(lat: lat, lon: lon, source: .manual)))
}
func offer(_ space: String, _ author: String, _ title: String) -> NewItem {
    NewItem(spaceId: space, author: author, content: content(title, .offer(Offer(
        organization: Organization(name: "Diakonie"),
        schedules: [OpeningRule(rrule: "FREQ=WEEKLY;BYDAY=MO", opens: "09:00", closes: "12:00")]))))
}
func event(_ space: String, _ author: String, _ title: String) -> NewItem {
    NewItem(spaceId: space, author: author, content: content(title, .event(Event(
        timing: EventTiming(start: "2030-05-01T15:00", end: "2030-05-01T17:00", timeZone: "Europe/Berlin")))))
}
func request(_ space: String, _ author: String, _ title: String) -> NewItem {
    NewItem(spaceId: space, author: author, content: content(title, .request(Request(direction: .need, category: "shopping", state: .open))))
}

func itemsOfSeveralKindsSearchAndMap() throws {
    let store = try openStore("local")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    let created = [
        try store.createItem(item: post(sid, anyone, "Straßenfest am Samstag")),
        try store.createItem(item: place(sid, anyone, "Nachbarschaftscafé", 51.3127, 9.4797)),
        try store.createItem(item: place(sid, anyone, "Bürgerhaus Süd", 51.2800, 9.4500)),
        try store.createItem(item: offer(sid, anyone, "Tafel Nordstadt")),
        try store.createItem(item: event(sid, anyone, "Seniorentreff")),
        try store.createItem(item: request(sid, anyone, "Einkaufshilfe gesucht")),
    ]
    try check(created.map { $0.kind() } == [.post, .place, .place, .offer, .event, .request], "kinds \(created.map { $0.kind() })")
    let viewer = Viewer(person: anyone, role: .resident)
    let feed = try store.feed(query: FeedQuery(spaceId: sid, viewer: viewer))
    try check(Set(feed.items.map(\.id)) == Set(created.map(\.id)), "feed has every item")
    let hits = try store.search(query: SearchRequest(spaceId: sid, viewer: viewer, text: "strassenfest"))
    try check(hits.map(\.item.id) == [created[0].id], "search folds ß: \(hits.map(\.item.id))")
    let inView = try store.viewport(query: ViewportQuery(spaceId: sid, viewer: viewer, south: 51.30, west: 9.47, north: 51.32, east: 9.49))
    try check(inView.map(\.id) == [created[1].id], "viewport holds the café only")
    let pins = try store.mapPins(query: ViewportQuery(spaceId: sid, viewer: viewer, south: 51.30, west: 9.47, north: 51.32, east: 9.49))
    try check(pins.map(\.id) == [created[1].id] && pins[0].title == created[1].content.title && pins[0].lon == created[1].content.location?.lon, "map pins are the viewport's items, light")
}

func liveQueryUpdates() async throws {
    let store = try openStore("live")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    _ = try store.createItem(item: post(sid, anyone, "Erster Beitrag"))
    let pages = store.feedUpdates(FeedQuery(spaceId: sid, viewer: Viewer(person: anyone, role: .resident)))
    var sizes: [Int] = []
    for try await page in pages {
        sizes.append(page.items.count)
        if page.items.count == 1 { _ = try store.createItem(item: post(sid, anyone, "Zweiter Beitrag")) }
        if page.items.count == 2 { break }   // ending the loop cancels the subscription
    }
    try check(sizes.first == 1 && sizes.last == 2, "live sizes \(sizes)")
}

/// The typed shortcuts: a detail sequence shows the item, then reports its erasure through
/// `onError` (typed) instead of dropping it; an events sequence expands the recurrence.
func liveShortcutsReportErrors() async throws {
    let store = try openStore("shortcuts")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    let item = try store.createItem(item: post(sid, anyone, "Wird gelöscht"))
    let errors = Recorder<QuartierFailure>()
    let details = store.detailUpdates(itemId: item.id, viewer: Viewer(person: anyone, role: .coordinator)) { errors.add($0) }
    // Iterated by a task of its own for the whole test: ending the iteration would cancel the
    // subscription before the erasure is reported.
    let titles = Recorder<String>()
    let consumer = Task { for try await detail in details { titles.add(detail.item.content.title["de"] ?? "") } }
    defer { consumer.cancel() }
    try check(try await eventually(20) { !titles.all.isEmpty }, "no detail within 20 s")
    try check(titles.all.first == "Wird gelöscht", "detail shows the item: \(titles.all)")
    _ = try store.eraseItem(itemId: item.id)
    try check(try await eventually(20) { !errors.all.isEmpty }, "no error within 20 s")
    try check(errors.all.contains { $0.kind == .notFound }, "erasure reported as notFound: \(errors.all)")
}

func syncTwoStores() async throws {
    try check(!serverURL.isEmpty, "QUARTIER_SERVER_URL is set")
    let alice = try openStore("alice"), bob = try openStore("bob")
    defer { try? alice.close(); try? bob.close() }
    let aliceSync = try QuartierSync(store: alice, serverUrl: serverURL)
    let bobSync = try QuartierSync(store: bob, serverUrl: serverURL)
    let alicePerson = try await aliceSync.register(displayName: "Alice").personId
    let bobPerson = try await bobSync.register(displayName: "Bob").personId
    let shared = try await aliceSync.createSpace(meta: meta)
    try check(shared.membership?.role == .coordinator, "coordinator")
    let sid = shared.space.id
    _ = try alice.createItem(item: post(sid, alicePerson, "Hallo Nachbarschaft"))
    _ = try alice.createItem(item: offer(sid, alicePerson, "Beratung dienstags"))
    let code = try await aliceSync.createInvite(spaceId: sid, role: .volunteer,
                                                expiresAtMs: Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000, maxUses: 1)
    try check(try await bobSync.redeemInvite(code: code).role == .volunteer, "bob joined as volunteer")

    var updates: [SyncUpdate] = []
    for try await update in aliceSync.syncUpdates() { updates.append(update) }   // starts here
    guard case let .finished(report)? = updates.last else { throw CheckFailure(description: "no finished update") }
    try check(report.pushed >= 2, "pushed \(report.pushed)")
    try check(try alice.outboxLen() == 0, "outbox empty")

    let received = try await bobSync.syncNow().received
    try check(received >= 2, "bob received \(received)")
    let bobFeed = try await firstWithin(20, bob.feedUpdates(FeedQuery(spaceId: sid, viewer: Viewer(person: bobPerson, role: .volunteer)))) { $0.items.count == 2 }
    try check(Set(bobFeed.items.compactMap { $0.content.title["de"] }) == ["Hallo Nachbarschaft", "Beratung dienstags"], "bob sees alice's items")

    _ = try bob.createItem(item: request(sid, bobPerson, "Wer hilft beim Umzug?"))
    _ = try await bobSync.syncNow()
    _ = try await aliceSync.syncNow()
    let aliceFeed = try await firstWithin(20, alice.feedUpdates(FeedQuery(spaceId: sid, viewer: Viewer(person: alicePerson, role: .coordinator)))) { $0.items.count == 3 }
    try check(aliceFeed.items.contains { $0.author == bobPerson && $0.kind() == .request }, "alice sees bob's request")
}

func typedErrors() async throws {
    let store = try openStore("errors")
    let sid = try store.createSpace(meta: meta, by: anyone).id
    let viewer = Viewer(person: anyone, role: .resident)
    let missing = try expectError("missing item", .notFound) { try store.itemDetail(itemId: UUID().uuidString, viewer: viewer) }
    try check(missing.code == "not_found" && missing.httpStatus == nil && !missing.isRetryable, "notFound facts: \(missing)")
    try expectError("bad id", .invalid) { try store.space(spaceId: "not-a-uuid") }
    try expectError("bad latitude", .invalidCoordinates) { try store.createItem(item: place(sid, anyone, "Nirgendwo", 123, 9)) }
    // Nothing listens on port 9: the call throws offline, retryable.
    let offline = try QuartierSync(store: store, serverUrl: "http://127.0.0.1:9")
    let unreachable = try await expectFailure("register against port 9", .offline) {
        try await withCancelToken { try await offline.register(displayName: nil, cancel: $0) }
    }
    try check(unreachable.isRetryable && unreachable.code == "offline", "offline facts: \(unreachable)")
    // The generated call throws the generated error; the Kind pattern matches it as well.
    do {
        _ = try await offline.register(displayName: nil)
        throw CheckFailure(description: "register against port 9 succeeded")
    } catch QuartierFailure.offline {
    }
    // Media: a type the store does not take, a hash that could name another file.
    let notMedia = try expectError("not media", .media) { try store.importMediaBytes(bytes: Data("kein Foto".utf8), options: nil) }
    try check(notMedia.code == "unsupported_media", "media code: \(notMedia.code)")
    try expectError("bad hash", .invalid) { try store.mediaFile(hash: "../secret") }
    try store.close()
    try expectError("closed store", .closed) { try store.spaces() }
}

/// The Swift-style error carries the generated one's structured facts: the server's status
/// and code, whether a retry can help, the wait a rate limit asks for.
func errorsInSwiftStyle() throws {
    let refused = QuartierError.Server(reason: "the server answered 403 (not_a_member)", status: 403, code: "not_a_member").failure
    try check(refused.kind == .server && refused.code == "not_a_member" && refused.httpStatus == 403 && !refused.isRetryable, "\(refused)")
    let busy = QuartierFailure(QuartierError.Server(reason: "busy", status: 503, code: "unavailable"))
    try check(busy.isRetryable && busy.httpStatus == 503, "\(busy)")
    let limited = QuartierError.RateLimited(reason: "slow down", retryAfterSecs: 30).failure
    try check(limited.kind == .rateLimited && limited.retryAfterSeconds == 30 && limited.httpStatus == 429 && limited.isRetryable, "\(limited)")
    try check(limited.reason == "slow down" && limited.errorDescription == "slow down", "reason: \(limited.reason)")
    try check(QuartierFailure(CheckFailure(description: "not ours")) == nil, "foreign errors are not converted")
    try check(QuartierFailure(limited as any Error) == limited, "a QuartierFailure converts to itself")
    // Every kind's name is its code in snake_case, for the kinds whose code is their name.
    let closed = QuartierError.Closed(reason: "x").failure
    try check(closed.code == "closed" && QuartierFailure.Kind.schemaTooNew.rawValue == "schemaTooNew", "names")
    switch QuartierError.NotFound(reason: "gone") as any Error {
    case QuartierFailure.notFound: break
    default: throw CheckFailure(description: "a generated NotFound does not match QuartierFailure.notFound")
    }
}

func panicIsAnError() throws {
    let store = try openStore("panic")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    for round in 0..<3 {
        let panic = try expectError("panic", .internal) { try store.diagnosticPanic(message: "round \(round)") }
        try check(panic.reason.contains("round \(round)"), "panic reason: \(panic.reason)")
        _ = try store.createItem(item: post(sid, anyone, "nach Panik \(round)"))
    }
    try check(try store.feed(query: FeedQuery(spaceId: sid, viewer: Viewer(person: anyone, role: .resident))).items.count == 3, "usable after panics")
}

/// A listener with state, Sendable without `@unchecked`: the state sits in a `Mutex`.
final class CountingListener: LiveQueryListener {
    private struct Counts { var results = 0, lastSize = -1, errors = 0 }
    private let counts = Mutex(Counts())
    let reachedTarget = DispatchSemaphore(value: 0)
    let target: Int

    init(target: Int) { self.target = target }

    func onResult(result: LiveResult) {
        guard case let .feed(page) = result else { return }
        counts.withLock { $0.results += 1; $0.lastSize = page.items.count }
        if page.items.count >= target { reachedTarget.signal() }
    }

    func onError(error: QuartierError) {
        counts.withLock { $0.errors += 1 }
    }

    var snapshot: (Int, Int, Int) { counts.withLock { ($0.results, $0.lastSize, $0.errors) } }
}

/// Records the errors of a live query (the control subscription of the laziness tests).
final class ErrorListener: LiveQueryListener {
    let errors = Recorder<QuartierFailure>()
    func onResult(result: LiveResult) {}
    func onError(error: QuartierError) { errors.add(error.failure) }
}

func concurrency() throws {
    let store = try openStore("busy")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    let viewer = Viewer(person: anyone, role: .resident)
    let query = FeedQuery(spaceId: sid, viewer: viewer, limit: 1000)
    let threads = 8, perThread = 40, total = threads * perThread
    let listeners = (0..<4).map { _ in CountingListener(target: total) }
    let subscriptions = try listeners.map { try store.subscribeFeed(query: query, listener: $0) }
    let failed = Recorder<String>()
    DispatchQueue.concurrentPerform(iterations: threads) { t in
        do {
            for i in 0..<perThread {
                _ = try store.createItem(item: post(sid, anyone, "Beitrag \(t)-\(i) Gartenzaun"))
                switch i % 3 {
                case 0: _ = try store.search(query: SearchRequest(spaceId: sid, viewer: viewer, text: "gartenzaun"))
                case 1: _ = try store.feed(query: FeedQuery(spaceId: sid, viewer: viewer, limit: 10))
                default: try store.subscribeFeed(query: query, listener: CountingListener(target: .max)).cancel()
                }
            }
        } catch {
            failed.add("\(error)")
        }
    }
    try check(failed.all.isEmpty, "thread failures \(failed.all)")
    try check(try store.feed(query: query).items.count == total, "every item written")
    for listener in listeners {
        try check(listener.reachedTarget.wait(timeout: .now() + 60) == .success, "listener saw \(listener.snapshot.1) of \(total)")
        try check(listener.snapshot.2 == 0 && listener.snapshot.0 >= 2, "listener \(listener.snapshot)")
    }
    subscriptions.forEach { $0.cancel() }
}

/// Live sequences subscribe when iterated, not when created, and unsubscribe when the loop
/// ends. Seen through `onError`: a detail query of a missing item reports notFound as soon as
/// it is subscribed. A control subscription made with the generated API shows when the
/// store's notifier has evaluated; the sequence under test must have seen nothing by then.
func liveSequencesStartWhenIterated() async throws {
    let store = try openStore("lazy")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    let viewer = Viewer(person: anyone, role: .coordinator)
    let missing = UUID().uuidString.lowercased()

    let lazyErrors = Recorder<QuartierFailure>()
    let sequence = store.detailUpdates(itemId: missing, viewer: viewer) { lazyErrors.add($0) }
    let control = ErrorListener()
    let controlSubscription = try store.subscribeDetail(itemId: missing, viewer: viewer, listener: control)
    try check(try await eventually(20) { !control.errors.all.isEmpty }, "control saw no error")
    try await Task.sleep(nanoseconds: 300_000_000)
    try check(lazyErrors.all.isEmpty, "a sequence that was only created is subscribed: \(lazyErrors.all)")
    controlSubscription.cancel()
    let consumer = Task { for try await _ in sequence {} }
    try check(try await eventually(20) { !lazyErrors.all.isEmpty }, "iterating did not subscribe")
    try check(lazyErrors.all.allSatisfy { $0.kind == .notFound }, "errors: \(lazyErrors.all)")
    consumer.cancel()
    _ = await consumer.result

    // Leaving the loop unsubscribes: the erasure reaches a control subscription, not the
    // sequence that was left.
    let item = try store.createItem(item: post(sid, anyone, "Bleibt kurz"))
    let leftErrors = Recorder<QuartierFailure>()
    var seen: [String] = []
    for try await detail in store.detailUpdates(itemId: item.id, viewer: viewer, onError: { leftErrors.add($0) }) {
        seen.append(detail.item.id)
        break
    }
    try check(seen == [item.id], "first detail: \(seen)")
    let afterwards = ErrorListener()
    let afterwardsSubscription = try store.subscribeDetail(itemId: item.id, viewer: viewer, listener: afterwards)
    defer { afterwardsSubscription.cancel() }
    _ = try store.eraseItem(itemId: item.id)
    try check(try await eventually(20) { afterwards.errors.all.contains { $0.kind == .notFound } }, "control saw no erasure")
    try await Task.sleep(nanoseconds: 300_000_000)
    try check(leftErrors.all.isEmpty, "the sequence left with break is still subscribed: \(leftErrors.all)")

    // A sequence that cannot start is created without error and throws from the loop.
    let closing = try openStore("lazy-closed")
    let closingSync = try QuartierSync(store: closing, serverUrl: serverURL)
    try closing.close()
    let feed = closing.feedUpdates(FeedQuery(spaceId: sid, viewer: viewer))
    let background = closingSync.backgroundSyncEvents(every: 60)
    try await expectFailure("live query on a closed store", .closed) { for try await _ in feed {} }
    try await expectFailure("background sync on a closed store", .closed) { for try await _ in background {} }
}

let blackHoleURL = ProcessInfo.processInfo.environment["QUARTIER_BLACKHOLE_URL"] ?? ""

/// A server that accepts connections and never answers (the test script's black hole): a call
/// to it waits for the client's 120 s timeout and then fails as offline. Cancelling the Task
/// ends it with `cancelled` instead, at once.
func cancellingTheTaskCancelsTheCall() async throws {
    try check(!blackHoleURL.isEmpty, "QUARTIER_BLACKHOLE_URL is set")
    let store = try openStore("stuck")
    defer { try? store.close() }
    let stuck = try QuartierSync(store: store, serverUrl: blackHoleURL)
    let started = Date()
    let call = Task { try await withCancelToken { try await stuck.register(displayName: nil, cancel: $0) } }
    try await Task.sleep(nanoseconds: 300_000_000)
    call.cancel()
    let outcome = await call.result
    print("     cancelled call returned after \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
    guard case let .failure(error) = outcome, let failure = error as? QuartierFailure else {
        throw CheckFailure(description: "cancelled call: \(outcome)")
    }
    try check(failure.kind == .cancelled, "cancelled call ended with \(failure)")
}

/// `sync()`, `runInBackground()`, `syncUpdates()` and `backgroundSyncEvents(every:)` against the
/// real server: a cancelled Task sends nothing; sequences sync only once iterated; leaving the
/// background loop stops background sync.
func syncCallsAndSequences() async throws {
    let store = try openStore("carol")
    defer { try? store.close() }
    let quartier = try QuartierSync(store: store, serverUrl: serverURL)
    let person = try await quartier.register(displayName: "Carol").personId
    let sid = try await quartier.createSpace(meta: meta).space.id
    _ = try store.createItem(item: post(sid, person, "Noch nicht gesendet"))
    let pending = try store.outboxLen()
    try check(pending > 0, "an edit waits in the outbox")

    let cancelled = await Task { () async throws -> SyncReport in
        withUnsafeCurrentTask { $0?.cancel() }
        return try await quartier.sync()
    }.result
    guard case let .failure(error) = cancelled, QuartierFailure(error)?.kind == .cancelled else {
        throw CheckFailure(description: "sync in a cancelled task: \(cancelled)")
    }
    let ran = await Task { () async -> Bool in
        withUnsafeCurrentTask { $0?.cancel() }
        return await quartier.runInBackground(transferMedia: true)
    }.value
    try check(!ran, "runInBackground in a cancelled task reported success")
    try check(try store.outboxLen() == pending, "a cancelled sync sent something")

    // Created, not iterated: nothing happens.
    let updates = quartier.syncUpdates()
    let background = quartier.backgroundSyncEvents(every: 1)
    try await Task.sleep(nanoseconds: 1_500_000_000)
    try check(try store.outboxLen() == pending, "a sequence that was only created synced")
    var last: SyncUpdate?
    for try await update in updates { last = update }
    guard case let .finished(report)? = last else { throw CheckFailure(description: "no finished update: \(String(describing: last))") }
    try check(report.pushed > 0 && (try store.outboxLen()) == 0, "pushed \(report.pushed)")

    _ = try store.createItem(item: post(sid, person, "Im Hintergrund gesendet"))
    var events: [SyncEvent] = []
    for try await event in background {
        events.append(event)
        if case .finished = event { break }
    }
    try check(events.first == .started, "events \(events)")
    try check(try store.outboxLen() == 0, "background sync pushed the edit")
    // The loop was left: background sync has stopped, a new edit stays, several intervals on.
    _ = try store.createItem(item: post(sid, person, "Bleibt liegen"))
    let left = try store.outboxLen()
    try await Task.sleep(nanoseconds: 3_000_000_000)
    try check(try store.outboxLen() == left && left > 0, "background sync went on after the loop ended")
    // runInBackground in a task that runs: syncs.
    try check(await quartier.runInBackground(), "runInBackground failed")
    try check(try store.outboxLen() == 0, "runInBackground pushed the edit")
}

func rssKb() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
}

func leak() throws {
    let store = try openStore("leak")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    for i in 0..<20 { _ = try store.createItem(item: post(sid, anyone, "Beitrag \(i)")) }
    let query = FeedQuery(spaceId: sid, viewer: Viewer(person: anyone, role: .resident), limit: 5)
    func cycle() throws {
        // Swift frees objects when the last reference goes (no GC), so dropping is enough.
        let listener = CountingListener(target: 1)
        let subscription = try store.subscribeFeed(query: query, listener: listener)
        _ = listener.reachedTarget.wait(timeout: .now() + 10)
        subscription.cancel()
        CancelToken().cancel()
        _ = try QuartierSync(store: store, serverUrl: "http://127.0.0.1:9")
        _ = try? store.space(spaceId: "nope")
    }
    for _ in 0..<2_000 { try cycle() }
    let before = rssKb()
    let cycles = 10_000
    for _ in 0..<cycles { try cycle() }
    let after = rssKb()
    print("swift LEAK-FIGURES cycles=\(cycles) rss_before_kb=\(before) rss_after_kb=\(after) growth_kb=\(after - before)")
    try check(after - before < 8 * 1024, "RSS grew by \(after - before) KiB over \(cycles) cycles")
}

// MARK: - Counselling

/// What the organisation's operator does: `quartier-server admin --data DIR grant-org-admin`.
func grantOrgAdmin(_ person: String) throws {
    let env = ProcessInfo.processInfo.environment
    guard let bin = env["QUARTIER_SERVER_BIN"], let data = env["QUARTIER_SERVER_DATA"] else {
        throw CheckFailure(description: "QUARTIER_SERVER_BIN / QUARTIER_SERVER_DATA not set: run scripts/test-bindings-swift")
    }
    let admin = Process()
    admin.executableURL = URL(fileURLWithPath: bin)
    admin.arguments = ["admin", "--data", data, "grant-org-admin", person]
    try admin.run()
    admin.waitUntilExit()
    try check(admin.terminationStatus == 0, "grant-org-admin exited with \(admin.terminationStatus)")
}

/// The texts of messages and notes, in order.
func texts(_ records: [CounsellingRecord]) -> [String] {
    records.compactMap { record in
        switch record.body {
        case let .message(text, _)?: text
        case let .note(_, text)?: text
        default: nil
        }
    }
}

/// As `expectFailure`, for a generated call (which throws the generated `QuartierError`).
@discardableResult
func expectGeneratedFailure<T>(_ what: String, _ kind: QuartierFailure.Kind, _ body: () async throws -> T) async throws -> QuartierFailure {
    do {
        _ = try await body()
    } catch {
        guard let failure = QuartierFailure(error), failure.kind == kind else {
            throw CheckFailure(description: "\(what): wrong error \(error)")
        }
        return failure
    }
    throw CheckFailure(description: "\(what): no error thrown")
}

/// Iterates `sequence`, handing each element (with its index) to `step` until `step` says done;
/// fails after `seconds`. `step` may do more work (a sync) between elements.
func iterate<S: AsyncSequence & Sendable>(_ seconds: Double, _ sequence: S, _ step: @escaping @Sendable (Int, S.Element) async throws -> Bool) async throws where S.Element: Sendable {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            var index = 0
            for try await element in sequence {
                if try await step(index, element) { return true }
                index += 1
            }
            return false
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return false
        }
        let done = try await group.next()!
        group.cancelAll()
        try check(done, "the sequence did not reach the expected state within \(seconds) s")
    }
}

func counselling() async throws {
    try check(!serverURL.isEmpty, "QUARTIER_SERVER_URL is set")
    let coord = try openStore("c-coord"), anna = try openStore("c-anna")
    let resident = try openStore("c-resident"), phone = try openStore("c-phone")
    defer { for store in [coord, anna, resident, phone] { try? store.close() } }
    let coordSync = try QuartierSync(store: coord, serverUrl: serverURL)
    let annaSync = try QuartierSync(store: anna, serverUrl: serverURL)
    let residentSync = try QuartierSync(store: resident, serverUrl: serverURL)
    let phoneSync = try QuartierSync(store: phone, serverUrl: serverURL)

    // The coordinator, as organisation admin, appoints a caseworker; a team with her in it.
    let coordinator = try await coordSync.register(displayName: "Koordination")
    let space = try await coordSync.createSpace(meta: meta).space.id
    try grantOrgAdmin(coordinator.personId)
    let expires = Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000
    let workerCode = try await coordSync.createInvite(spaceId: space, role: .caseworker, expiresAtMs: expires, maxUses: 1)
    let residentCode = try await coordSync.createInvite(spaceId: space, role: .resident, expiresAtMs: expires, maxUses: 1)
    let worker = try await annaSync.register(displayName: "Anna (Beratung)")
    try check(try await annaSync.redeemInvite(code: workerCode).role == .caseworker, "a caseworker")
    _ = try await residentSync.register(displayName: "Nachbarin")
    _ = try await residentSync.redeemInvite(code: residentCode)
    let general = try await coordSync.createCounsellingTeam(spaceId: space, settings: TeamSettings(name: "Schuldnerberatung", topic: "debt", postcodes: [], retentionDays: 90))
    let local = try await coordSync.createCounsellingTeam(spaceId: space, settings: TeamSettings(name: "Beratung Nippes", topic: "debt", postcodes: ["507"], retentionDays: nil))
    let members = try await coordSync.addTeamMember(spaceId: space, team: local.id, personId: worker.personId)
    try check(members.caseworkers == [worker.personId], "team members \(members)")
    let refused = try await expectGeneratedFailure("retention of 0 days", .server) {
        try await coordSync.createCounsellingTeam(spaceId: space, settings: TeamSettings(name: "Falsch", topic: "debt", postcodes: [], retentionDays: 0))
    }
    try check(refused.httpStatus == 400, "refused with 400: \(refused)")
    _ = try await annaSync.syncNow()

    // The resident routes, opens offline and writes; her sequence shows it queued, then delivered.
    let teams = try await residentSync.counsellingTeams(spaceId: space)
    try check(routeCounselling(teams: teams, topic: "debt", postcode: "50733")?.id == local.id, "the local team for 50733")
    try check(routeCounselling(teams: teams, topic: "debt", postcode: "10115")?.id == general.id, "the general team elsewhere")
    try check(routeCounselling(teams: teams, topic: "family", postcode: "50733") == nil, "no family team")
    let conversation = try resident.openConversation(spaceId: space, team: local.id)
    try await iterate(30, resident.counsellingUpdates(channel: conversation)) { index, records in
        if index == 0 {
            try check(records.isEmpty, "an empty conversation first")
            _ = try resident.sendCounsellingMessage(channel: conversation, text: "Ich habe Schulden beim Vermieter")
            return false
        }
        if records.first?.state == .queued { _ = try await residentSync.syncNow() }
        return records.first?.state == .delivered
    }

    // Anna's sequence, iterated before her sync, receives it.
    try await iterate(30, anna.counsellingUpdates(channel: conversation)) { index, records in
        if index == 0 {
            try check(records.isEmpty, "not on her phone before her sync")
            _ = try await annaSync.syncNow()
            return false
        }
        return texts(records) == ["Ich habe Schulden beim Vermieter"] && records[0].fromSide == .resident
    }
    let channels = try await firstWithin(30, anna.counsellingChannelUpdates()) { list in list.contains { $0.kind == .conversation } }
    try check(channels.map(\.id).contains(conversation), "the conversation among Anna's channels")

    // She answers, notes, proposes an appointment; the resident sees answer and appointment live.
    _ = try anna.sendCounsellingMessage(channel: conversation, text: "Bringen Sie den Brief mit")
    _ = try anna.writeCaseNote(team: local.id, about: conversation, text: "Mietschulden, etwa 1200 EUR")
    let appointment = UUID().uuidString.lowercased()
    let starts = Int64(Date().timeIntervalSince1970 * 1000) + 86_400_000
    let body = Body.appointment(appointment: appointment, startsAtMs: starts, minutes: 45, place: .phone(number: "+49 221 123456"), cancelled: false)
    _ = try anna.sendCounselling(channel: conversation, body: body)
    try expectError("an appointment of no minutes", .invalid) {
        try anna.sendCounselling(channel: conversation, body: .appointment(appointment: appointment, startsAtMs: starts, minutes: 0, place: .phone(number: "1"), cancelled: false))
    }
    _ = try await annaSync.syncNow()
    try check(texts(try anna.counsellingRecords(channel: local.id)) == ["Mietschulden, etwa 1200 EUR"], "the note in the team's channel")
    try await iterate(30, resident.counsellingUpdates(channel: conversation)) { index, records in
        if index == 0 { _ = try await residentSync.syncNow() }
        return records.count == 3
            && texts(records) == ["Ich habe Schulden beim Vermieter", "Bringen Sie den Brief mit"]
            && records[1].fromSide == .team && records[2].body == body
    }
    try check(try resident.counsellingChannels().map(\.kind) == [.conversation], "the resident never holds the notes")

    // A photo of a letter goes encrypted with a message; Anna fetches and opens it.
    let letter = Data(String(repeating: "Bescheid vom Jobcenter ", count: 20_000).utf8)
    _ = try resident.sendCounsellingFiles(channel: conversation, text: "Hier der Brief", files: [NewAttachment(bytes: letter, mime: "image/jpeg")])
    _ = try await residentSync.syncNow()
    _ = try await annaSync.syncNow()
    let files: [FileKey] = try anna.counsellingRecords(channel: conversation).compactMap { record in
        if case let .message(_, attachments)? = record.body { return attachments.first }
        return nil
    }
    try check(files.count == 1 && files[0].size == Int64(letter.count), "one file of the letter's size")
    try check(try anna.counsellingAttachment(channel: conversation, file: files[0]) == nil, "not fetched yet")
    try check(try await annaSync.fetchCounsellingAttachment(channel: conversation, file: files[0]) == letter, "the same bytes")

    // Closed; a key backup restored on a new phone with the passphrase reads the history.
    _ = try resident.closeConversation(channel: conversation)
    _ = try await residentSync.syncNow()
    let backup = try await residentSync.uploadKeyBackup(passphrase: "Kastanienbaum im Hinterhof 7")
    try check(try resident.keyBackupId() == backup.backupId, "the recovery code is kept")
    _ = try await phoneSync.register(displayName: "Neues Telefon")
    let wrong = try await expectGeneratedFailure("a wrong passphrase", .counselling) {
        try await phoneSync.restoreKeyBackup(recoveryCode: backup.backupId, passphrase: "falsch")
    }
    try check(wrong.code == "wrong_passphrase", "code \(wrong.code)")
    try check(try await phoneSync.restoreKeyBackup(recoveryCode: backup.backupId, passphrase: "Kastanienbaum im Hinterhof 7") == 1, "one conversation restored")
    _ = try await phoneSync.syncNow()
    try check(texts(try phone.counsellingRecords(channel: conversation)) == ["Ich habe Schulden beim Vermieter", "Bringen Sie den Brief mit", "Hier der Brief"], "history on the new phone")

    // Erasure empties the team's sequence at its next sync.
    try resident.eraseConversation(channel: conversation)
    _ = try await residentSync.syncNow()
    try await iterate(30, anna.counsellingUpdates(channel: conversation)) { index, records in
        if index == 0 { _ = try await annaSync.syncNow() }
        return records.isEmpty
    }
    let invalid = try expectError("an id that is not a UUID", .invalid) { try resident.counsellingRecords(channel: "kein-uuid") }
    try check(invalid.reason.contains("not a UUID"), "reason: \(invalid.reason)")
}

// MARK: - Device to device

/// Two phones registered with the server, in one space, both synced (so both hold
/// certificates); a QR-sized `QuartierPeerSession` pair driven by this loop carries a post, which
/// the receiver carries on to the server; the local network over loopback (opt-in, a listener,
/// `meetUpdates`, `meet(at:)`) with progress after every frame. No mDNS: announcing and browsing
/// would multicast on the machine's real interfaces (the core tests them in network namespaces).
func deviceToDevice() async throws {
    try check(!serverURL.isEmpty, "QUARTIER_SERVER_URL is set")
    let a = try openStore("p-a"), b = try openStore("p-b")
    defer { try? a.close(); try? b.close() }
    let syncA = try QuartierSync(store: a, serverUrl: serverURL)
    let syncB = try QuartierSync(store: b, serverUrl: serverURL)
    let personA = try await syncA.register(displayName: "Anna").personId
    let space = try await syncA.createSpace(meta: meta).space.id
    let code = try await syncA.createInvite(spaceId: space, role: .volunteer,
                                            expiresAtMs: Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000, maxUses: 1)
    let personB = try await syncB.register(displayName: "Ben").personId
    _ = try await syncB.redeemInvite(code: code)
    _ = try await syncA.syncNow()
    _ = try await syncB.syncNow()
    for (store, role) in [(a, Role.coordinator), (b, Role.volunteer)] {
        let certificates = try store.peerCertificates()
        try check(certificates.count == 1 && certificates[0].space == space && certificates[0].role == role && certificates[0].valid,
                  "one valid certificate as \(role): \(certificates)")
    }
    func hasAtB(_ item: Item) -> Bool {
        (try? b.itemDetail(itemId: item.id, viewer: Viewer(person: personB, role: .volunteer)).item.content.title) == item.content.title
    }
    func write(_ title: String, _ body: String) throws -> Item {
        try a.createItem(item: NewItem(spaceId: space, author: personA, content: ItemContent(
            title: ["de": title], body: ["de": body], audience: .everyone, status: .published, details: .post(Post(postType: .news)))))
    }

    // QR codes: this loop is the transport, one "code" at a time.
    let party = try write("Hoffest am Samstag", String(repeating: "Wir grillen im Hof. ", count: 150))
    try check(!hasAtB(party), "not at B before the session")
    let qr = qrFrameBytes()
    try check(qr == 2_000 && defaultFrameBytes() == 262_144, "frame sizes \(qr), \(defaultFrameBytes())")
    let initiator = try QuartierPeerSession(store: a, role: .initiator, frameBytes: qr)
    let responder = try QuartierPeerSession(store: b, role: .responder, frameBytes: qr)
    try check(responder.firstFrame() == nil, "the responder waits")
    var next = initiator.firstFrame()
    try check(next != nil && initiator.firstFrame() == nil, "the first frame, once")
    var shown: [Data] = []
    while let frame = next {
        shown.append(frame)
        try check(frame.count <= Int(qr), "a frame of \(frame.count) bytes")
        next = try (shown.count % 2 == 1 ? responder : initiator).receive(frame: frame)
    }
    try check(initiator.isFinished() && responder.isFinished(), "both finished")
    try check(shown.count > 4, "the post took several codes: \(shown.count)")
    let got = responder.report(), gave = initiator.report()
    try check(got.changesReceived == 1 && gave.changesSent == 1 && got.sharedSpaces == 1 && got.refusedCount == 0, "reports \(got) / \(gave)")
    try check(got.peerDevice == (try a.account())?.deviceId, "the peer proved its device: \(String(describing: got.peerDevice))")
    try check(got.framesReceived + gave.framesReceived == Int64(shown.count), "every frame counted")
    try check(hasAtB(party), "the post reached B")
    try check(got.carried == 1 && (try b.carriedChanges()).changes == 1, "B carries it for the server")
    _ = try await syncB.syncNow()
    try check(try b.carriedChanges() == CarriedChanges(changes: 0, bytes: 0), "delivered by B's sync")
    let finished = try expectError("a finished session", .peer) { try responder.receive(frame: shown[0]) }
    try check(finished.code == "protocol", "code \(finished.code)")
    let garbage = try expectError("garbage", .peer) { try QuartierPeerSession(store: b, role: .responder).receive(frame: Data([7, 1, 2])) }
    try check(garbage.code == "malformed", "code \(garbage.code)")

    // The local network over loopback, opted in on both phones.
    let market = try write("Flohmarkt im Veedel", "")
    for store in [a, b] {
        try store.setNearby(spaceId: space, enabled: true)
        try check(try store.nearbySpaces() == [space], "opted in")
    }
    let listener = try QuartierPeerListener(store: b)
    try check(listener.port() > 0, "a port")
    // Leaving a sequence that waits for a device stops the waiting; the listener listens on.
    let waiting = Task { () async throws -> Int in
        var seen = 0
        for try await _ in listener.meetUpdates() { seen += 1 }
        return seen
    }
    try await Task.sleep(nanoseconds: 300_000_000)
    waiting.cancel()
    try check(try await waiting.value == 0, "nothing came while waiting")
    try await Task.sleep(nanoseconds: 100_000_000)   // the library drops the cancelled wait

    let progressA = Recorder<PeerReport>()
    let served = Task { () async throws -> [PeerUpdate] in
        var updates: [PeerUpdate] = []
        for try await update in listener.meetUpdates() { updates.append(update) }
        return updates
    }
    let met = try await a.meet(at: "127.0.0.1:\(listener.port())") { progressA.add($0) }
    let updates = try await served.value
    guard case let .finished(servedReport)? = updates.last else { throw CheckFailure(description: "no finished update: \(updates)") }
    let progressB: [PeerReport] = updates.dropLast().compactMap { if case let .progress(report) = $0 { report } else { nil } }
    try check(progressB.count == updates.count - 1, "progress, then finished")
    for (progress, report) in [(progressB, servedReport), (progressA.all, met)] {
        try check(report.framesReceived > 0, "frames were received: \(report)")
        try check(progress.map(\.framesReceived) == Array(1...report.framesReceived), "one report per frame: \(progress.map(\.framesReceived))")
        try check(progress.last == report && report.finished, "the last progress is the final report")
    }
    try check(servedReport.changesReceived == 1 && met.changesSent == 1, "reports \(servedReport) / \(met)")
    try check(hasAtB(market), "the market post reached B")
    _ = try await expectFailure("not an address", .invalid) { try await a.meet(at: "nebenan") }
    let limits = RelayLimits(maxBytes: 0, maxAgeMs: 86_400_000)
    try b.setRelayLimits(limits: limits)
    try check(try b.relayLimits() == limits, "relay limits kept")
}

/// A phone on a tight data plan: with the peer signatures off, Carla gets Anna's post from the
/// server but cannot show it on to Ben; turned on, one sync fetches them and the next session
/// carries the post.
func peerSignaturesOnlyWhenTurnedOn() async throws {
    try check(!serverURL.isEmpty, "QUARTIER_SERVER_URL is set")
    let a = try openStore("ps-a"), b = try openStore("ps-b"), c = try openStore("ps-c")
    defer { try? a.close(); try? b.close(); try? c.close() }
    let syncA = try QuartierSync(store: a, serverUrl: serverURL)
    let syncB = try QuartierSync(store: b, serverUrl: serverURL)
    let syncC = try QuartierSync(store: c, serverUrl: serverURL)
    let expires = Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000
    let personA = try await syncA.register(displayName: "Anna").personId
    let space = try await syncA.createSpace(meta: meta).space.id
    let personB = try await syncB.register(displayName: "Ben").personId
    _ = try await syncB.redeemInvite(code: try await syncA.createInvite(spaceId: space, role: .volunteer, expiresAtMs: expires, maxUses: 1))
    _ = try await syncB.syncNow()
    let item = try a.createItem(item: post(space, personA, "Tafel heute offen"))
    _ = try await syncA.syncNow()
    func holds(_ store: QuartierStore) -> Bool {
        (try? store.itemDetail(itemId: item.id, viewer: Viewer(person: personB, role: .volunteer)).item.content.title) == item.content.title
    }
    func meet(_ initiatorStore: QuartierStore, _ responderStore: QuartierStore) throws -> (PeerReport, PeerReport) {
        let initiator = try QuartierPeerSession(store: initiatorStore, role: .initiator, frameBytes: qrFrameBytes())
        let responder = try QuartierPeerSession(store: responderStore, role: .responder, frameBytes: qrFrameBytes())
        var next = initiator.firstFrame()
        var turn = 0
        while let frame = next {
            next = try (turn % 2 == 0 ? responder : initiator).receive(frame: frame)
            turn += 1
        }
        return (responder.report(), initiator.report())
    }

    try check(try c.peerSignatures(), "on by default")
    try c.setPeerSignatures(enabled: false)
    try check(!(try c.peerSignatures()), "turned off")
    _ = try await syncC.register(displayName: "Carla")
    _ = try await syncC.redeemInvite(code: try await syncA.createInvite(spaceId: space, role: .volunteer, expiresAtMs: expires, maxUses: 1))
    _ = try await syncC.syncNow()
    try check(holds(c) && !holds(b), "Carla has the post, Ben not yet")
    var (got, gave) = try meet(c, b)
    try check(got.changesReceived == 0 && gave.unsignedDocuments >= 1, "without the signatures: \(got) / \(gave)")
    try check(!holds(b), "Ben is still without it")
    try c.setPeerSignatures(enabled: true)
    _ = try await syncC.syncNow()
    (got, gave) = try meet(c, b)
    try check(got.changesReceived == 1 && gave.unsignedDocuments == 0, "with the signatures: \(got) / \(gave)")
    try check(holds(b), "Ben got the post from Carla")
}

// MARK: - Moderation

/// A resident reports a post; the coordinator's `moderationQueueUpdates` yields it with the
/// reporter; the hide leaves the other resident's feed after a sync while the author still sees
/// it and the note; a resident's attempt to moderate is `notPermitted`.
func moderation() async throws {
    try check(!serverURL.isEmpty, "QUARTIER_SERVER_URL is set")
    let coord = try openStore("m-coord"), anna = try openStore("m-anna"), ben = try openStore("m-ben")
    defer { try? coord.close(); try? anna.close(); try? ben.close() }
    let syncC = try QuartierSync(store: coord, serverUrl: serverURL)
    let syncA = try QuartierSync(store: anna, serverUrl: serverURL)
    let syncB = try QuartierSync(store: ben, serverUrl: serverURL)
    let personC = try await syncC.register(displayName: "Koordination").personId
    let space = try await syncC.createSpace(meta: meta).space.id
    var persons: [String] = []
    for sync in [syncA, syncB] {
        let code = try await syncC.createInvite(spaceId: space, role: .resident,
                                                expiresAtMs: Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000, maxUses: 1)
        persons.append(try await sync.register(displayName: "Nachbar").personId)
        _ = try await sync.redeemInvite(code: code)
    }
    let (personA, personB) = (persons[0], persons[1])
    func syncAll() async throws { for sync in [syncA, syncB, syncC, syncA, syncB] { _ = try await sync.syncNow() } }
    func titles(_ store: QuartierStore, _ person: String) throws -> [String] {
        try store.feed(query: FeedQuery(spaceId: space, viewer: Viewer(person: person, role: .resident))).items.map { $0.content.title["de"] ?? "" }
    }
    try await syncAll()
    let spam = try anna.createItem(item: post(space, personA, "Billige Uhren")).id
    try await syncAll()
    try check(try titles(ben, personB) == ["Billige Uhren"], "Ben sees the post")
    _ = try ben.reportItem(itemId: spam, reason: .spam, text: "Werbung")
    _ = try await syncB.syncNow()
    _ = try await syncC.syncNow()
    let queue = try await firstWithin(10, coord.moderationQueueUpdates(spaceId: space), where: { !$0.isEmpty })
    try check(queue.count == 1 && queue[0].item == spam && queue[0].author == personA
              && queue[0].reports.map(\.reporter) == [personB] && queue[0].reports[0].reason == .spam, "the queue: \(queue)")
    _ = try expectError("a resident moderates", .notPermitted) { try ben.moderateItem(itemId: spam, action: .hide, note: "") }
    _ = try coord.moderateItem(itemId: spam, action: .hide, note: "Keine Werbung")
    try await syncAll()
    try check(try coord.moderationQueue(spaceId: space).isEmpty, "decided")
    try check(try titles(ben, personB).isEmpty, "hidden from Ben")
    try check(try titles(anna, personA) == ["Billige Uhren"], "the author still sees it")
    let told = try anna.moderationLog(spaceId: space, limit: 10)
    try check(told.count == 1 && told[0].action == .hide && told[0].text == "Keine Werbung" && told[0].actor == nil, "told: \(told)")
    _ = personC

    // The help board: Anna's request on Ben's board sequence; Ben responds; Anna chooses him;
    // the contacts reach the two of them; the request leaves the board.
    let details = ItemDetails.request(Request(direction: .need, category: "einkauf", state: .open))
    let wanted = try anna.createItem(item: NewItem(spaceId: space, author: personA, content: content("Wer kauft ein?", details))).id
    try await syncAll()
    let benSees = Viewer(person: personB, role: .resident)
    let board = try await firstWithin(10, ben.helpBoardUpdates(spaceId: space, viewer: benSees), where: { !$0.isEmpty })
    try check(board.map(\.id) == [wanted], "on the board: \(board)")
    _ = try expectError("responding to one's own request", .notPermitted) { try anna.respondToRequest(request: wanted, note: "", contact: "") }
    _ = try ben.respondToRequest(request: wanted, note: "Ich fahre morgen", contact: "Ben: 0171 111")
    try await syncAll()
    let notified = try await firstWithin(10, anna.notificationUpdates(), where: { $0.contains { $0.kind == .response } })
    try check(notified.first { $0.kind == .response }?.person == personB, "Anna is told of Ben's response: \(notified)")
    try anna.markNotificationsRead(ids: [])
    try check(try anna.unreadNotifications() == 0, "all read")
    _ = try anna.agreeToHelp(request: wanted, responder: personB, contact: "Anna: 0221 333")
    try await syncAll()
    let mine = try anna.helpStatus(request: wanted)
    try check(mine.state == .agreed && mine.contact == "Ben: 0171 111", "Anna: \(mine)")
    let chosen = try ben.helpStatus(request: wanted)
    try check(chosen.chosen == true && chosen.contact == "Anna: 0221 333", "Ben: \(chosen)")
    try check(try ben.notifications(unreadOnly: false, limit: 10).map(\.kind).contains(.agreed), "Ben is told he was chosen")
    _ = try await firstWithin(10, ben.helpBoardUpdates(spaceId: space, viewer: benSees), where: { $0.isEmpty })
}

/// Offers upkeep on one phone (a space of its own): an unchecked offer is due for review, a
/// checked one is not; content warnings for a recording without a transcript and an image
/// without alt text.
func offersUpkeepAndWarnings() throws {
    let store = try openStore("upkeep")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    let offerId = try store.createItem(item: offer(sid, anyone, "Sozialberatung")).id
    let coordinator = Viewer(person: anyone, role: .coordinator)
    try check(try store.offersToReview(spaceId: sid, viewer: coordinator, maxAgeDays: 180).map(\.id) == [offerId], "due for review")
    let checked = try store.confirmOffer(itemId: offerId, by: anyone)
    guard case let .offer(details) = checked.content.details else { throw CheckFailure(description: "an offer") }
    try check(details.assuredBy == anyone && details.assuredDate != nil, "checked by me today")
    try check(try store.offersToReview(spaceId: sid, viewer: coordinator, maxAgeDays: 180).isEmpty, "not due any more")
    let photo = MediaRef(hash: String(repeating: "b", count: 64), mimeType: "image/jpeg", size: 10)
    let voice = MediaRef(hash: String(repeating: "c", count: 64), mimeType: "audio/ogg", size: 10, durationMs: 3000)
    var audio = content("Sprachnachricht", .post(Post(postType: .audio)))
    audio.media = [voice, photo]
    try check(contentWarnings(content: audio) == [.missingTranscript(media: 0), .missingAltText(media: 1)], "warnings")
}

// MARK: - Standards and the printed guide

/// `YYYY-MM-DD` of `date` in this machine's zone (a `NaiveDate` for the library).
func isoDay(_ date: Date) -> String {
    let c = Calendar(identifier: .gregorian).dateComponents([.year, .month, .day], from: date)
    func pad(_ n: Int, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(n).count)) + String(n) }
    return "\(pad(c.year!, 4))-\(pad(c.month!, 2))-\(pad(c.day!, 2))"
}

/// A plain GET through URLSession: the status and the body as text.
func httpGet(_ url: String) async throws -> (Int, String) {
    guard let address = URL(string: url) else { throw CheckFailure(description: "not a URL: \(url)") }
    var request = URLRequest(url: address)
    request.timeoutInterval = 30
    return try await withCheckedThrowingContinuation { continuation in
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error {
                continuation.resume(throwing: error)
            } else if let http = response as? HTTPURLResponse {
                continuation.resume(returning: (http.statusCode, String(decoding: data ?? Data(), as: UTF8.self)))
            } else {
                continuation.resume(throwing: CheckFailure(description: "no HTTP response from \(url)"))
            }
        }.resume()
    }
}

/// As `bindings/tests/python/test_standards.py` (docs/standards.md): GeoJSON, iCalendar, HSDS
/// (JSON and tables) and vCard out of one store and into another, a second import finding the
/// offer `unchanged`; bad files `malformedInput` changing nothing; the guide as PDF and HTML, a
/// bad link template `invalid`; a member's secret calendar feed fetched with URLSession from the
/// real server, 404 once ended.
func standards() async throws {
    let one = try openStore("s-one"), two = try openStore("s-two")
    defer { try? one.close(); try? two.close() }
    let me = UUID().uuidString.lowercased()
    let spaceOne = try one.createSpace(meta: meta, by: me).id
    let spaceTwo = try two.createSpace(meta: meta, by: me).id
    _ = try one.createItem(item: NewItem(spaceId: spaceOne, author: me, content: content("Sozialberatung", .offer(Offer(
        organization: Organization(name: "Caritas Köln"),
        schedules: [OpeningRule(rrule: "FREQ=WEEKLY;BYDAY=MO,WE", opens: "10:00", closes: "12:00", validFrom: "2026-01-01")],
        contacts: [Contact(name: "Frau Yilmaz", phone: "+49 221 555 0101")])))))
    _ = try one.createItem(item: NewItem(spaceId: spaceOne, author: me, content: content(
        "Bücherschrank", .place(Place(category: "books")), location: Location(lat: 50.9612, lon: 6.9503, source: .manual))))
    let seen = Viewer(person: me, role: .coordinator)

    let geo = try one.exportGeojson(spaceId: spaceOne)
    let geoJSON = try JSONSerialization.jsonObject(with: geo.bytes) as? [String: Any]
    let features = geoJSON?["features"] as? [[String: Any]] ?? []
    let geoTitles = features.map { (($0["properties"] as? [String: Any])?["title:de"] as? String) ?? "" }
    try check(geoTitles == ["Bücherschrank"], "GeoJSON holds the place only: \(geoTitles)")
    let hsds = try one.exportHsds(spaceId: spaceOne, language: "de")
    let tables = try one.exportHsdsTables(spaceId: spaceOne, language: "de")
    try check(tables.files["services.csv"] != nil && tables.files["datapackage.json"] != nil, "HSDS tables: \(tables.files.keys.sorted())")
    let ics = try one.exportIcalendar(spaceId: spaceOne)
    let icsText = String(decoding: ics.bytes, as: UTF8.self)
    try check(ics.bytes.starts(with: Data("BEGIN:VCALENDAR\r\n".utf8)) && icsText.contains("Sozialberatung"), "iCalendar: \(icsText)")

    let first = try two.importHsds(spaceId: spaceTwo, by: me, bytes: hsds.bytes, language: "de")
    try check(first.created.count == 1 && first.skipped.isEmpty, "the first import creates the offer: \(first)")
    let again = try two.importHsdsTables(spaceId: spaceTwo, by: me, files: tables.files, language: "de")
    try check(again.created.isEmpty && again.unchanged == first.created, "the second import finds it unchanged: \(again)")
    try check(try two.importGeojson(spaceId: spaceTwo, by: me, bytes: geo.bytes, language: "de").created.count == 1, "GeoJSON creates the place")
    let copy = try two.itemDetail(itemId: first.created[0], viewer: seen).item
    try check(copy.content.title == ["de": "Sozialberatung"], "title: \(copy.content.title)")
    guard case let .offer(copied) = copy.content.details else { throw CheckFailure(description: "an offer: \(copy.content.details)") }
    try check(copied.schedules.first?.rrule == "FREQ=WEEKLY;BYDAY=MO,WE", "schedules: \(copied.schedules)")

    let cards = try two.offerVcards(itemId: first.created[0], viewer: seen)
    let read = try readVcards(bytes: Data(cards.utf8))
    try check(read.contacts.map(\.phone) == ["+49 221 555 0101"], "vCards read back: \(read)")

    let feed = FeedQuery(spaceId: spaceTwo, viewer: seen)
    let before = try two.feed(query: feed).items.count
    for bad in [Data([0xff, 0xfe]), Data("{".utf8), Data(String(repeating: "[", count: 100_000).utf8)] {
        try expectError("a bad GeoJSON file", .malformedInput) { try two.importGeojson(spaceId: spaceTwo, by: me, bytes: bad, language: "de") }
    }
    let badICS = Data(("BEGIN:VCALENDAR\r\n" + String(repeating: "BEGIN:VEVENT\r\n", count: 50)).utf8)
    try expectError("a bad iCalendar file", .malformedInput) { try two.importIcalendar(spaceId: spaceTwo, by: me, bytes: badICS, language: "de") }
    try check(try two.feed(query: feed).items.count == before, "bad files change nothing")

    let monday = Calendar(identifier: .iso8601).dateInterval(of: .weekOfYear, for: Date())!.start
    let guide = try two.makeGuide(spaceId: spaceTwo, spec: GuideSpec(
        language: "de", firstDay: isoDay(monday), lastDay: isoDay(monday.addingTimeInterval(13 * 86_400 + 3_600)),
        linkTemplate: "https://quartier.example/i/{item}", paper: .a4Booklet, largePrint: false, easyLanguage: false,
        phoneNumbers: [GuidePhoneNumber(label: ["de": "Notruf"], number: "112")]))
    try check(guide.pdf.starts(with: Data("%PDF".utf8)) && guide.pages >= 1 && guide.offersPrinted == 1,
              "the guide: \(guide.pages) pages, \(guide.offersPrinted) offers, \(guide.pdf.prefix(8))")
    try check(guide.html.contains("lang=\"de\"") && guide.html.contains("Sozialberatung"), "the guide's HTML: \(guide.html.prefix(300))")
    try expectError("a link template that is not https", .invalid) {
        try two.makeGuide(spaceId: spaceTwo, spec: GuideSpec(
            language: "de", firstDay: isoDay(monday), lastDay: isoDay(monday), linkTemplate: "ftp://nope",
            paper: .a3Poster, largePrint: true, easyLanguage: false, phoneNumbers: []))
    }

    // A member's secret calendar feed, from the real server.
    try check(!serverURL.isEmpty, "QUARTIER_SERVER_URL is set")
    let coord = try openStore("s-coord")
    defer { try? coord.close() }
    let sync = try QuartierSync(store: coord, serverUrl: serverURL)
    let person = try await sync.register(displayName: "Koordination").personId
    let space = try await sync.createSpace(meta: meta).space.id
    let start = isoDay(Date().addingTimeInterval(2 * 86_400))
    _ = try coord.createItem(item: NewItem(spaceId: space, author: person, content: content("Nachbarschaftscafé", .event(Event(
        timing: EventTiming(start: "\(start)T15:00:00", end: "\(start)T17:00:00", timeZone: "Europe/Berlin"))))))
    _ = try await sync.syncNow()
    let url = try await sync.renewCalendarFeed(spaceId: space)
    let (status, body) = try await httpGet(url)
    try check(status == 200 && body.hasPrefix("BEGIN:VCALENDAR") && body.contains("Nachbarschaftscaf"), "the feed (\(status)): \(body)")
    try await sync.endCalendarFeed(spaceId: space)
    let (gone, _) = try await httpGet(url)
    try check(gone == 404, "an ended feed answers 404, not \(gone)")
}

// MARK: - Devices nearby, in network namespaces

/// A phone in its own process, for discovery where mDNS may multicast: `nearby listen DB SPACE IP
/// SECONDS` announces a listener for SPACE at IP and prints `LISTENING <port>`; `nearby browse DB
/// SPACE` takes the first list of `nearbyDevices()` and prints `FOUND <ip:port> …`. `devicesNearby`
/// runs these children in two network namespaces.
func nearbyChild(_ args: [String]) async throws -> Never {
    let store = try QuartierStore.open(path: args[1])
    try store.setNearby(spaceId: args[2], enabled: true)
    if args[0] == "listen" {
        let listener = try QuartierPeerListener(store: store, port: 0)
        guard try listener.announce(ip: args[3]) else { exit(3) }
        FileHandle.standardOutput.write(Data("LISTENING \(listener.port())\n".utf8))  // unbuffered
        try await Task.sleep(nanoseconds: UInt64(args[4]).map { $0 * 1_000_000_000 } ?? 0)
        listener.withdraw()
    } else {
        var found: [NearbyDevice] = []
        for try await devices in store.nearbyDevices(wait: 10) {
            found = devices
            break
        }
        FileHandle.standardOutput.write(Data(("FOUND " + found.flatMap(\.addresses).joined(separator: " ") + "\n").utf8))
    }
    exit(0)
}

struct Skipped: Error { let reason: String }

/// Two network namespaces joined by a veth pair, made by scripts/test-bindings-swift (root only)
/// and handed over as QUARTIER_NETNS_A / _B (their files) and QUARTIER_NETNS_A_IP. One child
/// phone announces a listener for an opted-in space; the other's `nearbyDevices()` finds it by the
/// space's tag at its address and port; a phone of another space finds nothing.
func devicesNearby() throws {
    let env = ProcessInfo.processInfo.environment
    guard let nsA = env["QUARTIER_NETNS_A"], let nsB = env["QUARTIER_NETNS_B"], let ipA = env["QUARTIER_NETNS_A_IP"] else {
        throw Skipped(reason: "no network namespaces here (not root?)")
    }
    let me = URL(fileURLWithPath: CommandLine.arguments[0], relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
    func child(_ namespace: String, _ args: [String]) throws -> (Process, FileHandle) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["--net=\(namespace)", me.path, "nearby"] + args
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        return (process, pipe.fileHandleForReading)
    }
    func browse(_ db: String, _ space: String) throws -> [String] {
        let (process, out) = try child(nsB, ["browse", workDir.appendingPathComponent(db).path, space])
        let text = String(decoding: out.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try check(process.terminationStatus == 0, "the browsing child failed: \(text)")
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("FOUND") }) else {
            throw CheckFailure(description: "no FOUND line in \(text)")
        }
        return line.dropFirst("FOUND".count).split(separator: " ").map(String.init)
    }
    let space = UUID().uuidString.lowercased()
    let (listener, out) = try child(nsA, ["listen", workDir.appendingPathComponent("nearby-a.db").path, space, ipA, "30"])
    defer { listener.terminate(); listener.waitUntilExit() }
    var line = Data()
    while true {
        let byte = out.readData(ofLength: 1)
        if byte.isEmpty || byte.first == 10 { break }
        line.append(byte)
    }
    let said = String(decoding: line, as: UTF8.self).split(separator: " ")
    try check(said.count == 2 && said[0] == "LISTENING", "the listener said \(said)")
    let found = try browse("nearby-b.db", space)
    try check(found == ["\(ipA):\(said[1])"], "the phone of the space at its address: \(found)")
    let stranger = try browse("nearby-c.db", UUID().uuidString.lowercased())
    try check(stranger.isEmpty, "a phone of another space finds nothing: \(stranger)")
}

var passed = 0, failedCount = 0
@MainActor
func run(_ name: String, _ body: () async throws -> Void) async {
    do {
        try await body()
        passed += 1
        print("ok   \(name)")
    } catch let skipped as Skipped {
        print("skip \(name): \(skipped.reason)")
    } catch {
        failedCount += 1
        print("FAIL \(name): \(error)")
    }
}

if CommandLine.arguments.count > 2, CommandLine.arguments[1] == "nearby" {
    try await nearbyChild(Array(CommandLine.arguments.dropFirst(2)))
}
print("quartier swift bindings, library \(libraryVersion()), server \(serverURL)")
await run("items of several kinds, search, map query") { try itemsOfSeveralKindsSearchAndMap() }
await run("live query sequence updates after a write") { try await liveQueryUpdates() }
await run("typed live shortcuts report errors through onError") { try await liveShortcutsReportErrors() }
await run("two stores sync through a real server") { try await syncTwoStores() }
await run("counselling: teams, a conversation live in AsyncSequences, backup, erasure") { try await counselling() }
await run("device to device: certificates, a QR session in our loop, the local network with progress") { try await deviceToDevice() }
await run("peer signatures: off on a tight data plan, fetched once turned on") { try await peerSignaturesOnlyWhenTurnedOn() }
await run("moderation, the help board, notifications: a report in the queue, a hide, a request agreed") { try await moderation() }
await run("offers upkeep and content warnings") { try offersUpkeepAndWarnings() }
await run("standards: GeoJSON, iCalendar, HSDS, vCard between two stores, the printed guide, a calendar feed from the server") { try await standards() }
await run("devices nearby: an AsyncSequence finds a phone of the space in another network namespace") { try devicesNearby() }
await run("typed errors") { try await typedErrors() }
await run("errors in Swift style: kind, code, httpStatus, isRetryable") { try errorsInSwiftStyle() }
await run("live sequences subscribe when iterated, unsubscribe when left") { try await liveSequencesStartWhenIterated() }
await run("cancelling the Task cancels a call that hangs") { try await cancellingTheTaskCancelsTheCall() }
await run("sync calls and sequences: cancelled, lazy, background stops with the loop") { try await syncCallsAndSequences() }
await run("a panic in the core is an error; the store stays usable") { try panicIsAnError() }
await run("many threads while listeners fire") { try concurrency() }
await run("10000 create/drop cycles leave memory flat") { try leak() }
try? FileManager.default.removeItem(at: workDir)
print("swift: \(passed) passed, \(failedCount) failed")
exit(failedCount == 0 ? 0 : 1)
