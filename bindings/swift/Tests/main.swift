// The bindings scenario in Swift, against the real library and a real quartier-server
// (QUARTIER_SERVER_URL). Each check throws or traps on failure; the last line is the summary
// "swift: N passed, M failed" that CI reads.
import Foundation

struct CheckFailure: Error, CustomStringConvertible {
    let description: String
}

func check(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) throws {
    if !condition { throw CheckFailure(description: "line \(line): \(message())") }
}

/// Runs `body` and requires it to throw the error `matches` accepts.
func expectError<T>(_ what: String, _ body: () throws -> T, _ matches: (QuartierError) -> Bool) throws {
    do {
        _ = try body()
    } catch let error as QuartierError {
        try check(matches(error), "\(what): wrong error \(error)")
        return
    }
    throw CheckFailure(description: "\(what): no error thrown")
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
    NewItem(spaceId: space, author: author, content: content(title, .post(post: PostDetails(postType: .news))))
}
func place(_ space: String, _ author: String, _ title: String, _ lat: Double, _ lon: Double) -> NewItem {
    NewItem(spaceId: space, author: author, content: content(title, .place(place: PlaceDetails(category: "meeting")),
                                                            location: Location(lat: lat, lon: lon, source: .manual)))
}
func offer(_ space: String, _ author: String, _ title: String) -> NewItem {
    NewItem(spaceId: space, author: author, content: content(title, .offer(offer: OfferDetails(
        organization: Organization(name: "Diakonie"),
        schedules: [OpeningRule(rrule: "FREQ=WEEKLY;BYDAY=MO", opens: "09:00", closes: "12:00")]))))
}
func event(_ space: String, _ author: String, _ title: String) -> NewItem {
    NewItem(spaceId: space, author: author, content: content(title, .event(event: EventDetails(
        timing: EventTiming(start: "2030-05-01T15:00", end: "2030-05-01T17:00", timeZone: "Europe/Berlin")))))
}
func request(_ space: String, _ author: String, _ title: String) -> NewItem {
    NewItem(spaceId: space, author: author, content: content(title, .request(request: RequestDetails(direction: .need, category: "shopping", state: .open))))
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
    try check(created.map(\.kind) == [.post, .place, .place, .offer, .event, .request], "kinds \(created.map(\.kind))")
    let viewer = Viewer(person: anyone, role: .resident)
    let feed = try store.feed(query: FeedQuery(spaceId: sid, viewer: viewer))
    try check(Set(feed.items.map(\.id)) == Set(created.map(\.id)), "feed has every item")
    let hits = try store.search(query: SearchRequest(spaceId: sid, viewer: viewer, text: "strassenfest"))
    try check(hits.map(\.item.id) == [created[0].id], "search folds ß: \(hits.map(\.item.id))")
    let inView = try store.viewport(query: ViewportQuery(spaceId: sid, viewer: viewer, south: 51.30, west: 9.47, north: 51.32, east: 9.49))
    try check(inView.map(\.id) == [created[1].id], "viewport holds the café only")
}

func liveQueryUpdates() async throws {
    let store = try openStore("live")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    _ = try store.createItem(item: post(sid, anyone, "Erster Beitrag"))
    let pages = try store.feedUpdates(FeedQuery(spaceId: sid, viewer: Viewer(person: anyone, role: .resident)))
    var sizes: [Int] = []
    for await page in pages {
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
    let errors = ErrorBox()
    let details = try store.detailUpdates(itemId: item.id, viewer: Viewer(person: anyone, role: .coordinator)) { errors.add($0) }
    // Iterated by a task of its own for the whole test: ending the iteration would cancel the
    // subscription before the erasure is reported.
    let titles = TitleBox()
    let consumer = Task { for await detail in details { titles.add(detail.item.content.title["de"] ?? "") } }
    defer { consumer.cancel() }
    let deadline = Date().addingTimeInterval(20)
    while titles.all.isEmpty && Date() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
    try check(titles.all.first == "Wird gelöscht", "detail shows the item: \(titles.all)")
    _ = try store.eraseItem(itemId: item.id)
    while errors.all.isEmpty && Date() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
    try check(errors.all.contains { if case .NotFound = $0 { return true } else { return false } }, "erasure reported as NotFound: \(errors.all)")
}

final class TitleBox: @unchecked Sendable {
    private let lock = NSLock()
    private var titles: [String] = []
    func add(_ title: String) { lock.lock(); titles.append(title); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return titles }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [QuartierError] = []
    func add(_ error: QuartierError) { lock.lock(); errors.append(error); lock.unlock() }
    var all: [QuartierError] { lock.lock(); defer { lock.unlock() }; return errors }
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
    for try await update in aliceSync.syncUpdates() { updates.append(update) }
    guard case let .finished(report)? = updates.last else { throw CheckFailure(description: "no finished update") }
    try check(report.pushed >= 2, "pushed \(report.pushed)")
    try check(try alice.outboxLen() == 0, "outbox empty")

    let received = try await bobSync.syncNow().received
    try check(received >= 2, "bob received \(received)")
    let bobFeed = try await firstWithin(20, try bob.feedUpdates(FeedQuery(spaceId: sid, viewer: Viewer(person: bobPerson, role: .volunteer)))) { $0.items.count == 2 }
    try check(Set(bobFeed.items.compactMap { $0.content.title["de"] }) == ["Hallo Nachbarschaft", "Beratung dienstags"], "bob sees alice's items")

    _ = try bob.createItem(item: request(sid, bobPerson, "Wer hilft beim Umzug?"))
    _ = try await bobSync.syncNow()
    _ = try await aliceSync.syncNow()
    let aliceFeed = try await firstWithin(20, try alice.feedUpdates(FeedQuery(spaceId: sid, viewer: Viewer(person: alicePerson, role: .coordinator)))) { $0.items.count == 3 }
    try check(aliceFeed.items.contains { $0.author == bobPerson && $0.kind == .request }, "alice sees bob's request")
}

func typedErrors() async throws {
    let store = try openStore("errors")
    let sid = try store.createSpace(meta: meta, by: anyone).id
    let viewer = Viewer(person: anyone, role: .resident)
    try expectError("missing item", { try store.itemDetail(itemId: UUID().uuidString, viewer: viewer) }) {
        if case .NotFound = $0 { return true } else { return false }
    }
    try expectError("bad id", { try store.space(spaceId: "not-a-uuid") }) { if case .Invalid = $0 { return true } else { return false } }
    try expectError("bad latitude", { try store.createItem(item: place(sid, anyone, "Nirgendwo", 123, 9)) }) {
        if case .InvalidCoordinates = $0 { return true } else { return false }
    }
    // Nothing listens on port 9: the async call throws Offline.
    let offline = try QuartierSync(store: store, serverUrl: "http://127.0.0.1:9")
    do {
        _ = try await offline.register(displayName: nil)
        throw CheckFailure(description: "register against port 9 succeeded")
    } catch QuartierError.Offline {
    }
    // Media: a type the store does not take, a hash that could name another file.
    try expectError("not media", { try store.importMediaBytes(bytes: Data("kein Foto".utf8), options: nil) }) {
        if case .Media = $0 { return true } else { return false }
    }
    try expectError("bad hash", { try store.mediaFile(hash: "../secret") }) { if case .Invalid = $0 { return true } else { return false } }
    try store.close()
    try expectError("closed store", { try store.spaces() }) { if case .Closed = $0 { return true } else { return false } }
}

func panicIsAnError() throws {
    let store = try openStore("panic")
    defer { try? store.close() }
    let sid = try store.createSpace(meta: meta, by: anyone).id
    for round in 0..<3 {
        try expectError("panic", { try store.diagnosticPanic(message: "round \(round)") }) {
            if case let .Internal(reason) = $0 { return reason.contains("round \(round)") } else { return false }
        }
        _ = try store.createItem(item: post(sid, anyone, "nach Panik \(round)"))
    }
    try check(try store.feed(query: FeedQuery(spaceId: sid, viewer: Viewer(person: anyone, role: .resident))).items.count == 3, "usable after panics")
}

final class CountingListener: LiveQueryListener, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var results = 0
    private(set) var lastSize = -1
    private(set) var errors: [QuartierError] = []
    let reachedTarget = DispatchSemaphore(value: 0)
    let target: Int

    init(target: Int) { self.target = target }

    func onResult(result: LiveResult) {
        guard case let .feed(page) = result else { return }
        lock.lock()
        results += 1
        lastSize = page.items.count
        lock.unlock()
        if page.items.count >= target { reachedTarget.signal() }
    }

    func onError(error: QuartierError) {
        lock.lock(); errors.append(error); lock.unlock()
    }

    var snapshot: (Int, Int, Int) { lock.lock(); defer { lock.unlock() }; return (results, lastSize, errors.count) }
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
    let failures = NSLock()
    var failed: [Error] = []
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
            failures.lock(); failed.append(error); failures.unlock()
        }
    }
    try check(failed.isEmpty, "thread failures \(failed)")
    try check(try store.feed(query: query).items.count == total, "every item written")
    for listener in listeners {
        try check(listener.reachedTarget.wait(timeout: .now() + 60) == .success, "listener saw \(listener.snapshot.1) of \(total)")
        try check(listener.snapshot.2 == 0 && listener.snapshot.0 >= 2, "listener \(listener.snapshot)")
    }
    subscriptions.forEach { $0.cancel() }
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

var passed = 0, failedCount = 0
@MainActor
func run(_ name: String, _ body: () async throws -> Void) async {
    do {
        try await body()
        passed += 1
        print("ok   \(name)")
    } catch {
        failedCount += 1
        print("FAIL \(name): \(error)")
    }
}

print("quartier swift bindings, library \(libraryVersion()), server \(serverURL)")
await run("items of several kinds, search, map query") { try itemsOfSeveralKindsSearchAndMap() }
await run("live query sequence updates after a write") { try await liveQueryUpdates() }
await run("typed live shortcuts report errors through onError") { try await liveShortcutsReportErrors() }
await run("two stores sync through a real server") { try await syncTwoStores() }
await run("typed errors") { try await typedErrors() }
await run("a panic in the core is an error; the store stays usable") { try panicIsAnError() }
await run("many threads while listeners fire") { try concurrency() }
await run("10000 create/drop cycles leave memory flat") { try leak() }
try? FileManager.default.removeItem(at: workDir)
print("swift: \(passed) passed, \(failedCount) failed")
exit(failedCount == 0 ? 0 : 1)
