// swift-tools-version:6.0
// Swift package around the Quartier core: QuartierFFI.xcframework (the static libquartier_ffi.a
// for iOS devices, arm64, and the iOS simulator, arm64 + x86_64 in one lipo'd library; with the
// C headers and module map uniffi generates), the generated Swift, and the hand-written Swift
// layer from bindings/swift/Sources. ./build-xcframework fills in everything that is generated.
//
// Where the binary comes from, first match wins:
//   1. QUARTIER_BINARY_URL and QUARTIER_BINARY_CHECKSUM in the environment (CI, command line);
//   2. `releasedBinary` below, which `ios/release-manifest` fills in for the Package.swift of a
//      release (`build-xcframework --release-url URL` writes target/ios/release/Package.swift);
//   3. the local QuartierFFI.xcframework that build-xcframework builds.
// Written into the manifest rather than read from a file beside it: SwiftPM caches a manifest's
// evaluation by its text and environment, so a file read at evaluation could be stale.
import Foundation
import PackageDescription

struct ReleasedBinary: Sendable {
    let url: String
    let checksum: String
}

let releasedBinary: ReleasedBinary? = nil

func binarySource() -> ReleasedBinary? {
    let environment = ProcessInfo.processInfo.environment
    switch (environment["QUARTIER_BINARY_URL"], environment["QUARTIER_BINARY_CHECKSUM"]) {
    case let (url?, checksum?):
        return ReleasedBinary(url: url, checksum: checksum)
    case (nil, nil):
        return releasedBinary
    default:
        fatalError("set both QUARTIER_BINARY_URL and QUARTIER_BINARY_CHECKSUM, or neither")
    }
}

// The module inside the xcframework is quartier_ffiFFI (with quartier_domainFFI and
// quartier_coreFFI): the names the generated Swift imports.
let ffi: Target = binarySource().map {
    .binaryTarget(name: "QuartierFFI", url: $0.url, checksum: $0.checksum)
} ?? .binaryTarget(name: "QuartierFFI", path: "QuartierFFI.xcframework")

let package = Package(
    name: "Quartier",
    // iOS only: the xcframework has an iOS device and an iOS simulator library and nothing else
    // (no macOS, Mac Catalyst, tvOS or visionOS slice). 15.0 is the IPHONEOS_DEPLOYMENT_TARGET
    // the libraries are built with.
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Quartier", targets: ["Quartier"]),
    ],
    targets: [
        ffi,
        .target(
            name: "Quartier",
            dependencies: ["QuartierFFI"],
            // SQLite is bundled into the static library and TLS is rustls with webpki roots, so
            // nothing beyond libSystem needs linking.
            path: "Sources/Quartier"
        ),
    ],
    // The language mode the Linux test build checks the same Swift in (scripts/test-bindings-swift).
    swiftLanguageModes: [.v6]
)
