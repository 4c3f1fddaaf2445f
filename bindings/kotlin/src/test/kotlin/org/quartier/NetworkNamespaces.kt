package org.quartier

import java.io.File
import java.util.concurrent.TimeUnit

/**
 * Two network namespaces `<prefix>-a` and `<prefix>-b` joined by a veth pair, addresses
 * `<net>.1` and `<net>.2`, multicast on: a small local network of its own for mDNS tests. Made
 * with `ip` (root only); [pair] returns null where that is not possible. Closing deletes both.
 * Phones run in them as child JVMs of [NearbyChild] with this test's class path and library.
 */
class NetworkNamespaces private constructor(private val prefix: String, private val net: String) : AutoCloseable {
    private val names = listOf("$prefix-a", "$prefix-b")

    fun address(side: Int) = "$net.${side + 1}"

    /** Starts `NearbyChild args…` in namespace [side]; stdout is the caller's to read. */
    fun startIn(side: Int, vararg args: String): Process {
        val java = File(System.getProperty("java.home"), "bin/java").path
        val classPath = System.getProperty("surefire.test.class.path") ?: System.getProperty("java.class.path")
        return ProcessBuilder(
            listOf("ip", "netns", "exec", names[side], java, "-cp", classPath,
                "-Djna.library.path=${System.getProperty("jna.library.path")}",
                "org.quartier.NearbyChildKt") + args,
        ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
    }

    /** Runs a browsing child in namespace [side] to its end: the addresses it printed. */
    fun runIn(side: Int, vararg args: String): List<String> {
        val child = startIn(side, *args)
        val out = child.inputStream.bufferedReader().readText()
        check(child.waitFor(60, TimeUnit.SECONDS)) { "the child did not end" }
        check(child.exitValue() == 0) { "the child failed (${child.exitValue()}): $out" }
        val line = out.lines().firstOrNull { it.startsWith("FOUND") } ?: error("no FOUND line in: $out")
        return line.removePrefix("FOUND").trim().split(" ").filter { it.isNotEmpty() }
    }

    override fun close() {
        names.forEach { ip("netns", "del", it) }
    }

    companion object {
        private fun ip(vararg args: String): Boolean = runCatching {
            val process = ProcessBuilder(listOf("ip") + args).redirectErrorStream(true).start()
            process.inputStream.readAllBytes()
            process.waitFor(30, TimeUnit.SECONDS) && process.exitValue() == 0
        }.getOrDefault(false)

        /** The pair, or null where namespaces cannot be made (not root, no `ip`). */
        fun pair(prefix: String, net: String): NetworkNamespaces? {
            val (a, b) = listOf("$prefix-a", "$prefix-b")
            val (va, vb) = listOf("$prefix-va", "$prefix-vb")
            listOf(a, b).forEach { ip("netns", "del", it) }
            val made = NetworkNamespaces(prefix, net)
            val steps = listOf(
                listOf("netns", "add", a), listOf("netns", "add", b),
                listOf("link", "add", va, "type", "veth", "peer", "name", vb),
                listOf("link", "set", va, "netns", a), listOf("link", "set", vb, "netns", b),
                listOf("-n", a, "addr", "add", "$net.1/24", "dev", va),
                listOf("-n", b, "addr", "add", "$net.2/24", "dev", vb),
                listOf("-n", a, "link", "set", va, "up", "multicast", "on"),
                listOf("-n", b, "link", "set", vb, "up", "multicast", "on"),
            )
            if (steps.all { ip(*it.toTypedArray()) }) return made
            made.close()
            return null
        }
    }
}
