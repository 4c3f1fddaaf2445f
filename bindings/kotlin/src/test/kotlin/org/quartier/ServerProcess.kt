package org.quartier

import java.io.File
import java.nio.file.Files
import java.util.concurrent.TimeUnit

/**
 * A real `quartier-server serve` process on a free loopback port with its own data folder.
 * The binary comes from the `quartier.server.bin` system property (set by the pom).
 */
class ServerProcess private constructor(
    private val process: Process,
    private val bin: String,
    private val dataDir: File,
    val url: String,
) : AutoCloseable {
    companion object {
        fun start(): ServerProcess {
            val bin = System.getProperty("quartier.server.bin")
                ?: error("system property quartier.server.bin is not set")
            check(File(bin).canExecute()) { "no server binary at $bin (cargo build -p quartier-server)" }
            val dataDir = Files.createTempDirectory("quartier-server").toFile()
            // Test settings: any device may register spaces, no rate limits (docs/server.md).
            val process = ProcessBuilder(
                bin, "serve", "--listen", "127.0.0.1:0", "--data", dataDir.path,
                "--space-creation", "anyone", "--rate-per-address-per-minute", "0", "--rate-per-device-per-minute", "0", "--registrations-per-hour", "0", "--redemptions-per-hour", "0",
            )
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start()
            val reader = process.inputStream.bufferedReader()
            // The first stdout line names the bound address; port 0 lets the OS pick a free one.
            val first = reader.readLine() ?: run {
                process.destroyForcibly()
                error("quartier-server exited before listening (exit ${process.waitFor()})")
            }
            val url = Regex("listening on (http://\\S+)").find(first)?.groupValues?.get(1)
                ?: error("unexpected first line from quartier-server: $first")
            // Keep draining stdout so the server never blocks on a full pipe.
            Thread({ reader.useLines { lines -> lines.forEach { } } }, "quartier-server-stdout").apply {
                isDaemon = true
                start()
            }
            return ServerProcess(process, bin, dataDir, url)
        }
    }

    /**
     * Makes [person] an organisation admin (who appoints caseworkers), as the organisation's
     * operator does: `quartier-server admin --data DIR grant-org-admin PERSON`.
     */
    fun grantOrgAdmin(person: String) {
        val admin = ProcessBuilder(bin, "admin", "--data", dataDir.path, "grant-org-admin", person)
            .redirectErrorStream(true)
            .start()
        val output = admin.inputStream.bufferedReader().readText()
        check(admin.waitFor(30, TimeUnit.SECONDS) && admin.exitValue() == 0) { "grant-org-admin failed: $output" }
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
        dataDir.deleteRecursively()
    }
}
