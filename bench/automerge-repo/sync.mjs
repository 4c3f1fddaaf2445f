// Initial sync of N small documents with automerge-repo, two Node processes on loopback.
//
//   node sync.mjs [--docs N] [--concurrency K] [--timeout-s S] [--tmp DIR] [--keep]
//
// This process is the "server" peer. It first has N neighbourhood posts written into NodeFS
// storage in a temp folder by short-lived `--role seed` processes (not timed), then serves that
// folder with a fresh Repo (every document is loaded from disk on demand, as after a restart)
// behind a WebSocket server on 127.0.0.1. It then starts itself again as the "new member"
// (`--role client`), a separate process with an empty NodeFS store, which is told the N URLs
// through a manifest file. The member times connect -> every document ready with the right
// title -> repo.flush() and reports back; this process prints one JSON line on stdout.
// Progress and errors go to stderr.

import { spawn } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { performance } from "node:perf_hooks"

import { Repo, parseAutomergeUrl } from "@automerge/automerge-repo"
import {
  NodeWSServerAdapter,
  BrowserWebSocketClientAdapter,
} from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import * as Automerge from "@automerge/automerge"
import WebSocket, { WebSocketServer } from "ws"

const SELF = fileURLToPath(import.meta.url)
// Installed version, read from node_modules (the packages' "exports" hide package.json).
const versionOf = pkg =>
  JSON.parse(fs.readFileSync(path.join(path.dirname(SELF), "node_modules", pkg, "package.json"), "utf8")).version

// NodeFS storage that knows which writes are still in flight. repo.flush() resolves once its own
// saves are written, but a throttled background save of the same document may still be writing
// the same file (truncated first: a seeder that exited right after flush() and shutdown() left
// 0-byte snapshots, which a Repo then loads as empty documents). idle() waits for all of them.
class TrackedStorage extends NodeFSStorageAdapter {
  #pending = new Set()
  #track(promise) {
    this.#pending.add(promise)
    promise.then(
      () => this.#pending.delete(promise),
      () => this.#pending.delete(promise),
    )
    return promise
  }
  save(key, data) {
    return this.#track(super.save(key, data))
  }
  remove(key) {
    return this.#track(super.remove(key))
  }
  removeRange(prefix) {
    return this.#track(super.removeRange(prefix))
  }
  async idle() {
    while (this.#pending.size) await Promise.allSettled([...this.#pending])
  }
}

function args() {
  const out = { role: "server", docs: 1000, timeoutS: 840, keep: false }
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => argv[++i]
    if (a === "--docs") out.docs = Number(next())
    else if (a === "--timeout-s") out.timeoutS = Number(next())
    else if (a === "--keep") out.keep = true
    else if (a === "--role") out.role = next()
    else if (a === "--port") out.port = Number(next())
    else if (a === "--manifest") out.manifest = next()
    else if (a === "--dir") out.dir = next()
    else if (a === "--from") out.from = Number(next())
    else if (a === "--concurrency") out.concurrency = Number(next())
    else if (a === "--tmp") out.tmp = next()
    else throw new Error(`unknown argument ${a}`)
  }
  if (!Number.isInteger(out.docs) || out.docs < 1) throw new Error("--docs must be a positive integer")
  return out
}

const log = (...a) => console.error("[automerge-repo bench]", ...a)

// ---------------------------------------------------------------- documents

// Small deterministic PRNG (mulberry32) so every run seeds the same content.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const WORDS = (
  "Nachbarschaft Hinterhof Flohmarkt Treffen Samstag Sonntag Kinder Garten Fahrrad Werkstatt " +
  "Hilfe Nachbarn Straße Haus Hof Kuchen Kaffee Bank Baum Laterne Müll Abholung Spielplatz " +
  "Gemeinschaft Verein Bibliothek Bücher Tausch Regal Treppenhaus Aufzug Hausverwaltung Lärm " +
  "Sommerfest Grillen Pflanzen Balkon Tomaten Kräuter Schlüssel gefunden verloren bitte danke " +
  "gerne morgen heute abends vormittags gemeinsam wir alle neue alte kleine große schöne " +
  "und oder mit für auf im am beim vom zum zur der die das ein eine einen unser unsere euer"
).split(" ")
const TITLES = [
  "Flohmarkt im Hinterhof", "Fahrradwerkstatt am Samstag", "Bücherregal im Treppenhaus",
  "Sommerfest der Nachbarschaft", "Schlüssel gefunden", "Kräuter für alle", "Hilfe beim Umzug",
  "Neue Bank am Spielplatz", "Kaffee und Kuchen im Hof", "Sperrmüll-Abholung",
]
const EXTRA_TAGS = ["flohmarkt", "fahrrad", "kinder", "garten", "fest", "hilfe", "tausch", "hof"]

function makePost(i) {
  const rand = rng(i + 1) // content depends on i only, not on N or on the seeding batches
  const words = []
  let body = ""
  const target = 300 + Math.floor(rand() * 300) // 300-600 characters
  while (body.length < target) {
    words.push(WORDS[Math.floor(rand() * WORDS.length)])
    body = words.join(" ")
  }
  body = body[0].toUpperCase() + body.slice(1) + "."
  const created = new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString()
  const tags = { nachbarschaft: true }
  tags[EXTRA_TAGS[Math.floor(rand() * EXTRA_TAGS.length)]] = true
  const hex = n => Math.floor(rand() * 16 ** n).toString(16).padStart(n, "0")
  return {
    id: `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`,
    space: "space-0001",
    author: `member-${String(Math.floor(rand() * 200)).padStart(3, "0")}`,
    created_at: created,
    updated_at: created,
    title: { de: `${TITLES[i % TITLES.length]} #${i}` },
    // Plain strings are collaborative text in automerge-repo 2.x / Automerge 3: kept that way.
    body: { de: body },
    tags,
    audience: "everyone",
    status: "published",
    details: { kind: "post", post_type: "news" },
  }
}

// ---------------------------------------------------------------- server peer

const SEED_BATCH = 1000

// `--role seed --dir D --from I --docs K`: creates posts I..I+K-1 with a Repo that has storage
// and no network, flushes it and prints one manifest line per document. The server runs one such
// process per 1 000 documents: one Repo holding 10 000 new documents took 275 s to create them
// here (1 000 take 3 s), and a server process that had seeded kept that heap and served ~2x
// slower; this way the serving process starts clean, like a restarted sync server.
async function seedBatch(opt) {
  const storage = new TrackedStorage(opt.dir)
  const repo = new Repo({ storage, network: [] })
  const lines = []
  for (let i = opt.from; i < opt.from + opt.docs; i++) {
    const post = makePost(i)
    const handle = repo.create(post)
    lines.push(JSON.stringify({ url: handle.url, title: post.title.de, json_bytes: Buffer.byteLength(JSON.stringify(post)) }))
  }
  await repo.flush()
  await repo.shutdown()
  await storage.idle()
  process.stdout.write(lines.join("\n") + "\n")
  process.exit(0)
}

// Runs this script again with `args`; resolves with its exit code and stdout.
function runSelf(args, { timeoutS } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, SELF, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    })
    let out = ""
    child.stdout.on("data", d => (out += d))
    const timer =
      timeoutS &&
      setTimeout(() => {
        log(`timeout after ${timeoutS} s: killing pid ${child.pid}`)
        child.kill("SIGKILL")
      }, timeoutS * 1000)
    child.on("error", reject)
    child.on("exit", code => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

async function seed(dir, n) {
  const manifest = []
  for (let from = 0; from < n; from += SEED_BATCH) {
    const count = Math.min(SEED_BATCH, n - from)
    const { code, out } = await runSelf(["--role", "seed", "--dir", dir, "--from", String(from), "--docs", String(count)])
    if (code !== 0) throw new Error(`seeding documents ${from}.. failed (exit ${code})`)
    for (const line of out.trim().split("\n")) manifest.push(JSON.parse(line))
  }
  return manifest
}

async function server(opt) {
  // Both stores on /dev/shm where there is one, as for server/examples/sync_bench: the disk is
  // not what is measured (--tmp DIR to choose).
  const tmp = opt.tmp ?? (fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir())
  const root = fs.mkdtempSync(path.join(tmp, "amrepo-bench-"))
  const serverDir = path.join(root, "server")
  const clientDir = path.join(root, "client")
  fs.mkdirSync(clientDir)
  const manifestPath = path.join(root, "manifest.json")

  // 1. Seed into storage (not timed).
  const seedStart = performance.now()
  const manifest = await seed(serverDir, opt.docs)
  const jsonBytes = manifest.reduce((sum, m) => sum + m.json_bytes, 0)
  const seedMs = performance.now() - seedStart
  fs.writeFileSync(manifestPath, JSON.stringify(manifest))
  log(`seeded ${opt.docs} documents in ${seedMs.toFixed(0)} ms (${(jsonBytes / opt.docs).toFixed(0)} B JSON each) at ${serverDir}`)

  // 2. Serve them with a fresh Repo: documents come from disk when the member asks for them.
  // sharePolicy false is what automerge-repo-sync-server uses: send only what a peer asks for.
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise(resolve => wss.once("listening", resolve))
  const port = wss.address().port
  const repo = new Repo({
    storage: new NodeFSStorageAdapter(serverDir),
    network: [new NodeWSServerAdapter(wss)],
    sharePolicy: async () => false,
  })

  // 3. The new member, a separate process (Node flags given to this one, e.g. --cpu-prof, too).
  const clientArgs = ["--role", "client", "--port", String(port), "--manifest", manifestPath, "--dir", clientDir]
  if (opt.concurrency) clientArgs.push("--concurrency", String(opt.concurrency))
  const { code, out } = await runSelf(clientArgs, { timeoutS: opt.timeoutS })
  await repo.shutdown().catch(() => {}) // throws for documents a killed member left half-asked
  wss.close()
  if (!opt.keep) fs.rmSync(root, { recursive: true, force: true })
  else log(`kept ${root}`)
  // The member's JSON line: its figures, or what failed (then this process exits 1 too).
  const last = out.trim().split("\n").pop()
  const result = last ? JSON.parse(last) : { error: `member exited with ${code} and no report` }
  console.log(
    JSON.stringify({
      peer: "automerge-repo",
      version: versionOf("@automerge/automerge-repo"),
      automerge: versionOf("@automerge/automerge"),
      node: process.version,
      docs: opt.docs,
      ...result,
      json_bytes_per_doc: Math.round(jsonBytes / opt.docs),
      seed_ms: Math.round(seedMs),
    }),
  )
  process.exit(code === 0 && !result.error ? 0 : 1)
}

// ---------------------------------------------------------------- new member

async function client(opt) {
  const manifest = JSON.parse(fs.readFileSync(opt.manifest, "utf8"))
  const n = manifest.length

  // Cheap byte counts: every WebSocket message payload in either direction (frame headers and
  // TCP/IP not counted). isomorphic-ws is `ws` in Node, so the prototype is shared.
  const wire = { bytes_received: 0, bytes_sent: 0, messages_received: 0, messages_sent: 0 }
  const sendOrig = WebSocket.prototype.send
  WebSocket.prototype.send = function (data, ...rest) {
    wire.bytes_sent += data.byteLength ?? data.length
    wire.messages_sent++
    return sendOrig.call(this, data, ...rest)
  }
  const byType = {} // decoded repo messages received, by type (request, sync, doc-unavailable…)

  // ---- timed window starts: connect
  const t0 = performance.now()
  const adapter = new BrowserWebSocketClientAdapter(`ws://127.0.0.1:${opt.port}`)
  const recvOrig = adapter.receiveMessage.bind(adapter)
  adapter.receiveMessage = bytes => {
    wire.bytes_received += bytes.byteLength
    wire.messages_received++
    return recvOrig(bytes)
  }
  adapter.on("message", m => (byType[m.type] = (byType[m.type] ?? 0) + 1))
  let disconnects = 0 // the server drops a member that misses a keep-alive ping (5 s)
  const onDisconnect = () => {
    disconnects++
    log(`member: server disconnected at ${Math.round(performance.now() - t0)} ms`)
  }
  adapter.on("peer-disconnected", onDisconnect)
  const storage = new TrackedStorage(opt.dir)
  const repo = new Repo({ network: [adapter], storage })
  await adapter.whenReady()
  const connectMs = performance.now() - t0

  // Ask for the documents (repo.find resolves when the handle is ready) and check the content,
  // not only the state. K workers each take the next URL, so at most K finds are in flight
  // (--concurrency K; default: all N at once). Failures are counted, not thrown.
  let done = 0
  let next = 0
  const failed = []
  const worker = async () => {
    while (next < n) {
      const { url, title } = manifest[next++]
      try {
        const handle = await repo.find(url)
        const got = handle.doc()?.title?.de
        if (got !== title) throw new Error(`${url}: title ${JSON.stringify(got)}, expected ${JSON.stringify(title)}`)
        if (++done % Math.max(1, Math.floor(n / 10)) === 0) log(`member: ${done}/${n} ready at ${Math.round(performance.now() - t0)} ms`)
      } catch (e) {
        failed.push(e)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(opt.concurrency || n, n) }, worker))
  if (failed.length) {
    const ms = Math.round(performance.now() - t0)
    log(`member: ${failed.length} of ${n} finds failed after ${ms} ms, first: ${failed[0]}`)
    console.log(
      JSON.stringify({
        error: String(failed[0]?.message ?? failed[0]),
        failed_docs: failed.length,
        ready_docs: done,
        failed_after_ms: ms,
        concurrency: opt.concurrency || n,
        disconnects,
        peak_rss_kib: process.resourceUsage().maxRSS,
        ...wire,
        received_by_type: byType,
      }),
    )
    process.exit(1)
  }
  const readyMs = performance.now() - t0
  await repo.flush() // every document written to NodeFS storage (writeFile; no fsync)
  await storage.idle() // and no other write still in flight
  const wallMs = performance.now() - t0
  // ---- timed window ends

  const peakRssKib = process.resourceUsage().maxRSS // KiB on Linux

  // Outside the window: what is on disk, read with a fresh storage adapter (no cache), must load
  // as the right document.
  const check = new NodeFSStorageAdapter(opt.dir)
  let stored = 0
  for (const { url, title } of manifest) {
    const chunks = await check.loadRange([parseAutomergeUrl(url).documentId])
    const parts = chunks.filter(c => (c.key[1] === "snapshot" || c.key[1] === "incremental") && c.data?.length)
    if (parts.length && Automerge.load(Buffer.concat(parts.map(c => c.data))).title?.de === title) stored++
  }
  if (stored !== n) throw new Error(`only ${stored} of ${n} documents in the member's storage`)

  console.log(
    JSON.stringify({
      wall_ms: Math.round(wallMs),
      ms_per_doc: Number((wallMs / n).toFixed(3)),
      connect_ms: Math.round(connectMs),
      all_ready_ms: Math.round(readyMs),
      flush_ms: Math.round(wallMs - readyMs),
      peak_rss_kib: peakRssKib,
      stored_docs: stored,
      concurrency: opt.concurrency || n,
      disconnects,
      ...wire,
      received_by_type: byType,
    }),
  )
  adapter.off("peer-disconnected", onDisconnect)
  await repo.shutdown()
  process.exit(0)
}

const opt = args()
const main = { server, seed: seedBatch, client }[opt.role]
if (!main) throw new Error(`unknown role ${opt.role}`)
main(opt).catch(e => {
  log(e?.stack ?? e)
  process.exit(1)
})
