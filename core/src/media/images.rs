//! Image processing on import: decode with size limits, apply the EXIF orientation, re-encode
//! without any metadata, and derive a preview and a thumbnail. Pure functions on bytes (the
//! `image` crate decodes and encodes, `fast_image_resize` scales).
//!
//! Re-encoding is what strips metadata: the encoders write pixels only, so EXIF (GPS position,
//! camera serial, time), XMP, IPTC and comments do not survive.

use std::borrow::Cow;
use std::io::Cursor;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};

/// Long side of the preview, in pixels: sharp on a phone screen, ~150–300 KB as JPEG.
pub const PREVIEW_LONG_SIDE: u32 = 1280;
/// Long side of the thumbnail, in pixels: a feed or map tile, ~15–30 KB as JPEG.
pub const THUMBNAIL_LONG_SIDE: u32 = 256;
/// JPEG quality of re-encoded originals, previews and thumbnails.
pub const JPEG_QUALITY: u8 = 82;
/// Largest accepted width or height.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Largest accepted pixel count (a 100 MP camera; RGB decoding needs 300 MB).
pub const MAX_IMAGE_PIXELS: u64 = 100_000_000;
/// Most memory a decoder may allocate; guards against decompression bombs.
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;

/// One encoded image.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub mime_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// What an imported image becomes.
#[derive(Clone, Debug)]
pub struct ProcessedImage {
    /// The stored original: re-encoded without metadata (or the input bytes, if asked to keep
    /// metadata). Its dimensions are as displayed, orientation applied.
    pub original: Encoded,
    /// Only for images longer than [`PREVIEW_LONG_SIDE`].
    pub preview: Option<Encoded>,
    /// Only for images longer than [`THUMBNAIL_LONG_SIDE`].
    pub thumbnail: Option<Encoded>,
}

/// Decodes `bytes` (already sniffed as `format`), applies its orientation and derives what the
/// store keeps.
pub fn process(bytes: &[u8], format: ImageFormat, keep_metadata: bool) -> Result<ProcessedImage> {
    let mime_type = format.to_mime_type();
    // Decoders are fed bytes from anywhere; a panic in one is a malformed file, not a crash.
    std::panic::catch_unwind(|| process_inner(bytes, format, keep_metadata)).unwrap_or_else(|_| {
        Err(Error::MalformedMedia {
            mime_type: mime_type.into(),
            reason: "the image decoder failed on this content".into(),
        })
    })
}

fn process_inner(bytes: &[u8], format: ImageFormat, keep_metadata: bool) -> Result<ProcessedImage> {
    let mime_type = format.to_mime_type();
    let image = decode(bytes, format)?;
    let (width, height) = (image.width(), image.height());
    let original = if keep_metadata {
        Encoded {
            bytes: bytes.to_vec(),
            mime_type,
            width,
            height,
        }
    } else {
        match format {
            ImageFormat::Jpeg => encode_jpeg(&image)?,
            ImageFormat::Png => encode_png(&image)?,
            ImageFormat::WebP => encode_webp_lossless(&image)?,
            // GIF has no EXIF and no orientation; re-encoding would lose its animation.
            _ => Encoded {
                bytes: bytes.to_vec(),
                mime_type,
                width,
                height,
            },
        }
    };
    let preview = if width.max(height) > PREVIEW_LONG_SIDE {
        Some(resize(&image, PREVIEW_LONG_SIDE)?)
    } else {
        None
    };
    let thumbnail = if width.max(height) > THUMBNAIL_LONG_SIDE {
        let source = preview.as_ref().map(|(img, _)| img).unwrap_or(&image);
        Some(resize(source, THUMBNAIL_LONG_SIDE)?)
    } else {
        None
    };
    Ok(ProcessedImage {
        original,
        preview: preview.map(|(_, encoded)| encoded),
        thumbnail: thumbnail.map(|(_, encoded)| encoded),
    })
}

/// Decodes with limits and applies the EXIF orientation.
pub fn decode(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage> {
    let mime_type = format.to_mime_type();
    // The JPEG decoder fills missing data with grey instead of failing; a photo cut short
    // (interrupted copy) must not be stored as if it were whole.
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(Error::MalformedMedia {
            mime_type: mime_type.into(),
            reason: "the JPEG data ends before its end-of-image marker (truncated)".into(),
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| image_error(mime_type, e))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
        return Err(Error::MediaTooLarge {
            reason: format!("{width}×{height} pixels, at most {MAX_IMAGE_PIXELS} are accepted"),
        });
    }
    // Damaged EXIF only loses the orientation, not the photo.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| image_error(mime_type, e))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Walks the JPEG segment structure from SOI to EOI: every segment must be whole and the
/// entropy-coded data of each scan must be followed by a marker. Bytes after EOI (trailers such
/// as motion-photo videos) are ignored. Structure only; the decoder checks the content.
fn jpeg_is_complete(b: &[u8]) -> bool {
    if !b.starts_with(&[0xff, 0xd8]) {
        return false;
    }
    let mut i = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while i + 1 < b.len() && b[i] == 0xff && b[i + 1] == 0xff {
            i += 1;
        }
        if i + 1 >= b.len() || b[i] != 0xff {
            return false;
        }
        let marker = b[i + 1];
        i += 2;
        match marker {
            0xd9 => return true,
            0x01 | 0xd0..=0xd7 => continue,
            _ => {
                if i + 1 >= b.len() {
                    return false;
                }
                let length = usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
                if length < 2 {
                    return false;
                }
                i += length;
                if i > b.len() {
                    return false;
                }
                if marker == 0xda {
                    // Entropy-coded data runs to the next marker that is neither a stuffed
                    // 0xFF00 nor a restart marker.
                    loop {
                        if i + 1 >= b.len() {
                            return false;
                        }
                        if b[i] == 0xff && b[i + 1] != 0 && !(0xd0..=0xd7).contains(&b[i + 1]) {
                            break;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
}

fn image_error(mime_type: &str, error: ImageError) -> Error {
    match error {
        ImageError::Limits(e) => Error::MediaTooLarge {
            reason: format!("decoding would exceed the image limits ({e})"),
        },
        ImageError::Unsupported(e) => Error::UnsupportedMedia {
            mime_type: mime_type.into(),
            reason: e.to_string(),
        },
        other => Error::MalformedMedia {
            mime_type: mime_type.into(),
            reason: other.to_string(),
        },
    }
}

fn encode_error(error: ImageError) -> Error {
    Error::MalformedMedia {
        mime_type: "image".into(),
        reason: format!("could not encode: {error}"),
    }
}

/// JPEG without metadata; alpha (none in JPEG sources) would be dropped.
fn encode_jpeg(image: &DynamicImage) -> Result<Encoded> {
    let mut bytes = Vec::new();
    let encoder = JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
    let written = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image.write_with_encoder(encoder),
        _ => DynamicImage::ImageRgb8(image.to_rgb8()).write_with_encoder(encoder),
    };
    written.map_err(encode_error)?;
    Ok(Encoded {
        bytes,
        mime_type: "image/jpeg",
        width: image.width(),
        height: image.height(),
    })
}

/// PNG without ancillary chunks (no eXIf, tEXt, iTXt); lossless.
fn encode_png(image: &DynamicImage) -> Result<Encoded> {
    let mut bytes = Vec::new();
    let encoder = PngEncoder::new(&mut bytes);
    let written = match image {
        DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => {
            DynamicImage::ImageRgba16(image.to_rgba16()).write_with_encoder(encoder)
        }
        _ => image.write_with_encoder(encoder),
    };
    written.map_err(encode_error)?;
    Ok(Encoded {
        bytes,
        mime_type: "image/png",
        width: image.width(),
        height: image.height(),
    })
}

/// Lossless WebP (the only WebP encoder of the `image` crate): exact, but larger than a lossy
/// source. Photos from phones are JPEG, so this is rare.
fn encode_webp_lossless(image: &DynamicImage) -> Result<Encoded> {
    let mut bytes = Vec::new();
    let encoder = WebPEncoder::new_lossless(&mut bytes);
    let written = match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image.write_with_encoder(encoder),
        _ if image.color().has_alpha() => {
            DynamicImage::ImageRgba8(image.to_rgba8()).write_with_encoder(encoder)
        }
        _ => DynamicImage::ImageRgb8(image.to_rgb8()).write_with_encoder(encoder),
    };
    written.map_err(encode_error)?;
    Ok(Encoded {
        bytes,
        mime_type: "image/webp",
        width: image.width(),
        height: image.height(),
    })
}

/// Scales to `long_side` on the longer side (Lanczos3), encoded as JPEG, or PNG when the
/// image has transparency. Returns the scaled pixels too, to derive a smaller size from.
fn resize(image: &DynamicImage, long_side: u32) -> Result<(DynamicImage, Encoded)> {
    let (width, height) = (image.width(), image.height());
    let scale = f64::from(long_side) / f64::from(width.max(height));
    let target_w = ((f64::from(width) * scale).round() as u32).clamp(1, long_side);
    let target_h = ((f64::from(height) * scale).round() as u32).clamp(1, long_side);
    let alpha = image.color().has_alpha();
    let source: Cow<'_, DynamicImage> = match (image, alpha) {
        (DynamicImage::ImageRgb8(_), false) | (DynamicImage::ImageRgba8(_), true) => Cow::Borrowed(image),
        (_, false) => Cow::Owned(DynamicImage::ImageRgb8(image.to_rgb8())),
        (_, true) => Cow::Owned(DynamicImage::ImageRgba8(image.to_rgba8())),
    };
    let mut scaled = DynamicImage::new(target_w, target_h, source.color());
    Resizer::new()
        .resize(
            source.as_ref(),
            &mut scaled,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .map_err(|e| Error::MalformedMedia {
            mime_type: "image".into(),
            reason: format!("could not scale: {e}"),
        })?;
    let encoded = if alpha {
        encode_png(&scaled)?
    } else {
        encode_jpeg(&scaled)?
    };
    Ok((scaled, encoded))
}
