//! Photos of an incident: taken on the phone, made smaller there (longest side at most
//! [`MAX_SIDE`] pixels, JPEG), kept on the device until uploaded, and named by the SHA-256
//! of their bytes, so an upload retried or resumed never makes a second copy.
//!
//! The report's document names its photos ([`PhotoRef`], an append-only list); the bytes
//! travel separately, after the report's text, in chunks the server appends at the
//! offset it already holds. The server stores a photo only once [`verify`] accepts the
//! whole of it against the reference in the document.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::Timestamp;

/// The longest side of a stored photo, in pixels.
pub const MAX_SIDE: u32 = 1600;
/// The largest photo accepted, in bytes (a 1600 px JPEG from a phone is 200-800 KB).
pub const MAX_PHOTO_BYTES: u64 = 4 * 1024 * 1024;
/// Most photos one report can name.
pub const MAX_PHOTOS: usize = 30;
/// The size of the chunks a device uploads: small enough that a weak signal still moves
/// a photo forward, each chunk is kept once received.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// A photo as the report's document names it (one scalar JSON string per photo).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRef {
    /// The SHA-256 of its bytes, 64 lowercase hex digits: its name everywhere.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
    /// When it was added to the report (the device's clock).
    pub at: Timestamp,
}

impl PhotoRef {
    /// The reference to these bytes, whose dimensions are read from them.
    pub fn of(bytes: &[u8], at: Timestamp) -> Result<Self, PhotoError> {
        let (width, height) = inspect(bytes)?;
        Ok(Self {
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            width,
            height,
            at,
        })
    }

    /// Whether the reference itself is well formed (the bytes are checked by [`verify`]).
    pub fn check(&self) -> Result<(), String> {
        if !is_sha256_hex(&self.sha256) {
            return Err("a photo is named by the SHA-256 of its bytes (64 hex digits)".to_owned());
        }
        if self.size == 0 || self.size > MAX_PHOTO_BYTES {
            return Err(format!(
                "a photo has at most {} MB",
                MAX_PHOTO_BYTES / (1024 * 1024)
            ));
        }
        if !(1..=MAX_SIDE).contains(&self.width) || !(1..=MAX_SIDE).contains(&self.height) {
            return Err(format!("a photo's sides are at most {MAX_SIDE} pixels"));
        }
        if self.at.0 < 0 {
            return Err("a photo needs a real time".to_owned());
        }
        Ok(())
    }
}

/// A new document gets a photos list only if it has photos: most reports have none, and
/// a smaller document is cheaper to merge. The first photo's edit makes the list (see the
/// document's reader for two replicas making it at once).
pub(crate) fn reconcile_if_any<R: autosurgeon::Reconciler>(
    photos: &[PhotoRef],
    reconciler: R,
) -> Result<(), R::Error> {
    if photos.is_empty() {
        return Ok(());
    }
    super::list_as_is(photos, reconciler)
}

/// Why a photo's bytes were refused. The message is shown to the person.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PhotoError {
    /// Not a JPEG, or not a whole one.
    #[error("this is not a JPEG photo")]
    NotJpeg,
    /// Larger than [`MAX_PHOTO_BYTES`].
    #[error("the photo is {size} bytes; at most {max} are accepted", max = MAX_PHOTO_BYTES)]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// A side longer than [`MAX_SIDE`].
    #[error("the photo is {width}×{height} pixels; its sides must be at most {max}", max = MAX_SIDE)]
    TooWide {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// The bytes are not the ones the report names.
    #[error("the bytes received are not the photo the report names ({0})")]
    NotAsNamed(&'static str),
}

/// Reads the dimensions of a JPEG and checks it is one, whole (starts with a JPEG marker,
/// ends with the end-of-image marker), within [`MAX_PHOTO_BYTES`] and [`MAX_SIDE`].
/// Decodes untrusted bytes: fuzzed.
pub fn inspect(bytes: &[u8]) -> Result<(u32, u32), PhotoError> {
    let size = bytes.len() as u64;
    if size > MAX_PHOTO_BYTES {
        return Err(PhotoError::TooLarge { size });
    }
    if !matches!(imagesize::image_type(bytes), Ok(imagesize::ImageType::Jpeg))
        || !bytes.ends_with(&[0xFF, 0xD9])
    {
        return Err(PhotoError::NotJpeg);
    }
    let dims = imagesize::blob_size(bytes).map_err(|_| PhotoError::NotJpeg)?;
    let (width, height) = (
        u32::try_from(dims.width).map_err(|_| PhotoError::NotJpeg)?,
        u32::try_from(dims.height).map_err(|_| PhotoError::NotJpeg)?,
    );
    if width == 0 || height == 0 {
        return Err(PhotoError::NotJpeg);
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(PhotoError::TooWide { width, height });
    }
    Ok((width, height))
}

/// Checks that `bytes` are the photo `named` names: its size, its hash, a JPEG of its
/// dimensions within the limits.
pub fn verify(bytes: &[u8], named: &PhotoRef) -> Result<(), PhotoError> {
    if bytes.len() as u64 != named.size {
        return Err(PhotoError::NotAsNamed("size"));
    }
    if sha256_hex(bytes) != named.sha256 {
        return Err(PhotoError::NotAsNamed("SHA-256"));
    }
    let (width, height) = inspect(bytes)?;
    if (width, height) != (named.width, named.height) {
        return Err(PhotoError::NotAsNamed("dimensions"));
    }
    Ok(())
}

/// The SHA-256 of `bytes`, as 64 lowercase hex digits.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` is 64 lowercase hex digits.
#[must_use]
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The size a `width`×`height` picture is drawn at so that its longest side is at most
/// `max` pixels: the same shape (rounded), never enlarged, never below one pixel.
#[must_use]
pub fn fit_within(width: u32, height: u32, max: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max || max == 0 {
        return (width.max(1), height.max(1));
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * u64::from(max) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(max).clamp(1, max)
    };
    (scale(width), scale(height))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The smallest whole JPEG `inspect` reads: start of image, a baseline frame header
    /// with the dimensions, end of image.
    fn jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&[0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9]);
        b
    }

    #[test]
    fn a_jpeg_is_read_and_its_limits_checked() {
        assert_eq!(inspect(&jpeg(1600, 1200)), Ok((1600, 1200)));
        assert_eq!(
            inspect(&jpeg(1601, 10)),
            Err(PhotoError::TooWide {
                width: 1601,
                height: 10
            })
        );
        assert_eq!(inspect(&jpeg(0, 10)), Err(PhotoError::NotJpeg));
        assert_eq!(inspect(b"GIF89a not a jpeg"), Err(PhotoError::NotJpeg));
        assert_eq!(inspect(b"%PDF-1.7"), Err(PhotoError::NotJpeg));
        assert_eq!(inspect(&[]), Err(PhotoError::NotJpeg));
        let truncated = &jpeg(10, 10)[..12];
        assert_eq!(inspect(truncated), Err(PhotoError::NotJpeg));
        let huge = vec![0xFF; usize::try_from(MAX_PHOTO_BYTES).unwrap_or(usize::MAX) + 1];
        assert!(matches!(inspect(&huge), Err(PhotoError::TooLarge { .. })));
    }

    #[test]
    fn verify_holds_the_bytes_to_the_reference() {
        let bytes = jpeg(800, 600);
        let named = PhotoRef::of(&bytes, Timestamp(1)).expect("a jpeg");
        assert_eq!(named.size, bytes.len() as u64);
        assert!(named.check().is_ok());
        assert_eq!(verify(&bytes, &named), Ok(()));
        let mut other = bytes.clone();
        other[8] ^= 1; // another height, same size
        assert_eq!(verify(&other, &named), Err(PhotoError::NotAsNamed("SHA-256")));
        assert_eq!(verify(&bytes[1..], &named), Err(PhotoError::NotAsNamed("size")));
        let lying = PhotoRef {
            width: 799,
            ..named.clone()
        };
        assert_eq!(verify(&bytes, &lying), Err(PhotoError::NotAsNamed("dimensions")));
    }

    #[test]
    fn references_are_checked() {
        let good = PhotoRef::of(&jpeg(10, 20), Timestamp(5)).expect("a jpeg");
        let bad = [
            PhotoRef {
                sha256: good.sha256.to_uppercase(),
                ..good.clone()
            },
            PhotoRef {
                sha256: "abc".into(),
                ..good.clone()
            },
            PhotoRef {
                size: 0,
                ..good.clone()
            },
            PhotoRef {
                size: MAX_PHOTO_BYTES + 1,
                ..good.clone()
            },
            PhotoRef {
                width: MAX_SIDE + 1,
                ..good.clone()
            },
            PhotoRef {
                height: 0,
                ..good.clone()
            },
            PhotoRef {
                at: Timestamp(-1),
                ..good.clone()
            },
        ];
        for r in bad {
            assert!(r.check().is_err(), "{r:?}");
        }
    }

    #[test]
    fn fit_within_examples() {
        assert_eq!(fit_within(4000, 3000, 1600), (1600, 1200));
        assert_eq!(fit_within(3000, 4000, 1600), (1200, 1600));
        assert_eq!(fit_within(1600, 1600, 1600), (1600, 1600));
        assert_eq!(fit_within(640, 480, 1600), (640, 480));
        assert_eq!(fit_within(100_000, 1, 1600), (1600, 1));
    }

    proptest! {
        /// The longest side ends within the bound, nothing is enlarged or collapsed to
        /// nothing, and the shape is kept to within rounding.
        #[test]
        fn fit_within_bounds(width in 1u32..20_000, height in 1u32..20_000, max in 1u32..4_000) {
            let (w, h) = fit_within(width, height, max);
            prop_assert!(w.max(h) <= max);
            prop_assert!(w >= 1 && h >= 1);
            prop_assert!(w <= width && h <= height);
            if width.max(height) <= max {
                prop_assert_eq!((w, h), (width, height));
            } else {
                prop_assert_eq!(w.max(h), max);
                // Aspect ratio kept to within one pixel of rounding on the short side.
                let exact = f64::from(width.min(height)) * f64::from(max) / f64::from(width.max(height));
                prop_assert!((f64::from(w.min(h)) - exact).abs() <= 1.0);
            }
        }

        /// Whatever the bytes, `inspect` answers without panicking, and whatever it
        /// accepts is within the limits.
        #[test]
        fn inspect_never_accepts_out_of_bounds(tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = vec![0xFF, 0xD8, 0xFF];
            bytes.extend(tail);
            if let Ok((w, h)) = inspect(&bytes) {
                prop_assert!((1..=MAX_SIDE).contains(&w) && (1..=MAX_SIDE).contains(&h));
            }
        }
    }
}
