//! Audio files for benches and tests that move media: real, minimal, with content of any size.

/// A WAV file of `size` bytes (rounded down to even; at least the 44-byte header): 16-bit mono
/// noise from `fill`, audio the media store takes as it is (no tags to strip, nothing decoded).
pub fn wav_bytes(size: usize, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let size = size.max(44) & !1;
    let data_len = (size - 44) as u32;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(size, 0);
    fill(&mut out[44..]);
    out
}
