package org.quartier

import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.condition.EnabledIfSystemProperty
import org.junit.jupiter.api.io.TempDir
import org.quartier.flow.feedFlow
import uniffi.quartier_core.*
import uniffi.quartier_domain.*
import uniffi.quartier_ffi.*
import java.io.File
import java.nio.file.Path
import java.util.UUID

/**
 * Measurement behind LeakTest's threshold, not a test: RSS and heap after GC for each kind of
 * object alone, warm-up then two blocks of 10 000 cycles, plus a negative control that really
 * leaks (keeps every subscription), to show what a leak looks like in these figures.
 * Run: mvn test -Dtest=LeakProbe -Dprobe=true
 */
@EnabledIfSystemProperty(named = "probe", matches = "true")
class LeakProbe {
    @TempDir
    lateinit var dir: Path

    private fun rssKb(): Long =
        File("/proc/self/status").readLines().first { it.startsWith("VmRSS:") }.split(Regex("\\s+"))[1].toLong()

    private fun settled(): String {
        repeat(3) { System.gc(); Thread.sleep(200) }
        val rt = Runtime.getRuntime()
        return "rss=${rssKb()} heapUsedKb=${(rt.totalMemory() - rt.freeMemory()) / 1024}"
    }

    private val kept = mutableListOf<LiveSubscription>()

    @Test
    fun probe() {
        QuartierStore.open(dir.resolve("leak.db").toString()).use { store ->
            val me = UUID.randomUUID().toString()
            val sid = store.createSpace(Fixtures.berlinMeta, me).id
            repeat(20) { store.createItem(Fixtures.post(sid, me, "Beitrag $it")) }
            val query = FeedQuery(spaceId = sid, viewer = Viewer(me, Role.RESIDENT), limit = 5)
            val parts = linkedMapOf<String, (Int) -> Unit>(
                "flow" to { _ -> runBlocking { store.feedFlow(query).first() } },
                "rawsub" to { _ ->
                    store.subscribeFeed(query, object : LiveQueryListener {
                        override fun onResult(result: LiveResult) {}
                        override fun onError(error: QuartierException) {}
                    })
                },
                "rawsubClosed" to { _ ->
                    store.subscribeFeed(query, object : LiveQueryListener {
                        override fun onResult(result: LiveResult) {}
                        override fun onError(error: QuartierException) {}
                    }).use { it.cancel() }
                },
                "token" to { _ -> CancelToken().use { it.cancel() } },
                "sync" to { _ -> QuartierSync(store, "http://127.0.0.1:9").close() },
                "error" to { i -> try { store.space("nope-$i") } catch (_: QuartierException.Invalid) {} },
                "feed" to { _ -> store.feed(query) },
                // Negative control: a subscription and its listener kept alive every cycle.
                "LEAKING-sub" to { _ ->
                    kept += store.subscribeFeed(query, object : LiveQueryListener {
                        override fun onResult(result: LiveResult) {}
                        override fun onError(error: QuartierException) {}
                    })
                },
            )
            for ((name, f) in parts) {
                repeat(2000) { f(it) }
                val a = settled()
                repeat(10000) { f(it) }
                val b = settled()
                repeat(10000) { f(it) }
                val c = settled()
                println("PROBE $name: $a | $b | $c")
            }
        }
    }
}
