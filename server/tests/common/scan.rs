//! Byte scans for plaintext: every file under a folder, searched for marker strings as UTF-8,
//! UTF-16 (both byte orders), and inside every zstd frame found at any offset (decompressed,
//! bounded). What `cargo test plaintext` relies on to prove nothing readable was stored.

use std::path::{Path, PathBuf};

/// Most bytes one zstd frame is decompressed to while scanning.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Where a marker was found.
#[derive(Debug)]
pub struct Found {
    pub file: PathBuf,
    pub marker: String,
    pub encoding: &'static str,
}

fn encodings(marker: &str) -> Vec<(&'static str, Vec<u8>)> {
    let utf16le: Vec<u8> = marker.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let utf16be: Vec<u8> = marker.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    vec![
        ("utf-8", marker.as_bytes().to_vec()),
        ("utf-16le", utf16le),
        ("utf-16be", utf16be),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every zstd frame in `bytes`, decompressed (frames that do not decode are skipped).
fn zstd_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(offset) = bytes[at..].windows(4).position(|w| w == MAGIC) {
        let start = at + offset;
        if let Ok(decoded) = zstd::bulk::decompress(&bytes[start..], MAX_FRAME) {
            out.push(decoded);
        } else {
            let mut decoder = match zstd::stream::read::Decoder::new(&bytes[start..]) {
                Ok(d) => d,
                Err(_) => {
                    at = start + 4;
                    continue;
                }
            };
            let mut decoded = Vec::new();
            use std::io::Read;
            let _ = (&mut decoder).take(MAX_FRAME as u64).read_to_end(&mut decoded);
            if !decoded.is_empty() {
                out.push(decoded);
            }
        }
        at = start + 4;
    }
    out
}

/// Every marker found in any file under `dir`, in any of the encodings.
pub fn find_markers(dir: &Path, markers: &[&str]) -> Vec<Found> {
    let mut paths = Vec::new();
    files(dir, &mut paths);
    let mut found = Vec::new();
    for file in paths {
        let Ok(bytes) = std::fs::read(&file) else { continue };
        let frames = zstd_frames(&bytes);
        for marker in markers {
            for (encoding, needle) in encodings(marker) {
                if contains(&bytes, &needle) {
                    found.push(Found {
                        file: file.clone(),
                        marker: marker.to_string(),
                        encoding,
                    });
                }
                if frames.iter().any(|f| contains(f, &needle)) {
                    found.push(Found {
                        file: file.clone(),
                        marker: marker.to_string(),
                        encoding: if encoding == "utf-8" {
                            "zstd utf-8"
                        } else {
                            "zstd utf-16"
                        },
                    });
                }
            }
        }
    }
    found
}
