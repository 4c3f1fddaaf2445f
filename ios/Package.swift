// swift-tools-version:5.9
// Swift package around the Quartier core: QuartierFFI.xcframework (static libquartier_ffi.a for
// iOS devices and simulators, with the C header and module map uniffi generates), the generated
// Swift, and the AsyncSequence wrappers. ./build-xcframework fills in everything that is generated.
import PackageDescription

let package = Package(
    name: "Quartier",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Quartier", targets: ["Quartier"]),
    ],
    targets: [
        // The module inside it is quartier_ffiFFI, the name the generated Swift imports.
        .binaryTarget(name: "QuartierFFI", path: "QuartierFFI.xcframework"),
        .target(
            name: "Quartier",
            dependencies: ["QuartierFFI"],
            // SQLite is bundled into the static library and TLS is rustls with webpki roots, so
            // nothing beyond libSystem needs linking.
            path: "Sources/Quartier"
        ),
    ]
)
