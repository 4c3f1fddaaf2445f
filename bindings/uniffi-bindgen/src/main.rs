//! `uniffi-bindgen` pinned to the workspace's uniffi version, so generated bindings always match
//! the scaffolding compiled into `quartier-ffi`. Run through `scripts/generate-bindings`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
