// A phone in its own process, for discovery across network namespaces (PeerTest runs it under
// `ip netns exec`): `listen DB SPACE IP SECONDS` announces a listener for SPACE and prints
// `LISTENING <port>`; `browse DB SPACE` collects the first list of the nearby flow and prints
// `FOUND <ip:port> …`.
package org.quartier

import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import org.quartier.flow.nearbyDevicesFlow
import uniffi.quartier_ffi.QuartierPeerListener
import uniffi.quartier_ffi.QuartierStore
import uniffi.quartier_ffi.shutdownRuntime
import kotlin.system.exitProcess

fun main(args: Array<String>) {
    val (mode, db, space) = args
    QuartierStore.open(db).use { store ->
        store.setNearby(space, true)
        when (mode) {
            "listen" -> QuartierPeerListener(store, 0).use { listener ->
                check(listener.announce(args[3])) { "nothing announced" }
                println("LISTENING ${listener.port()}")
                System.out.flush()
                Thread.sleep(args[4].toLong() * 1000)
                listener.withdraw()
            }
            "browse" -> {
                val found = runBlocking { store.nearbyDevicesFlow(waitMs = 10_000).first() }
                println("FOUND " + found.flatMap { it.addresses }.joinToString(" "))
            }
            else -> exitProcess(2)
        }
    }
    shutdownRuntime()
}
