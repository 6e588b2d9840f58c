//! The envelope around a driver's pipeline cache data, checked before wgpu
//! (and the driver, which trusts that data) ever sees it.
//!
//! Drivers read pipeline cache data as their own: damaged data can make them
//! misbehave. So the crate never hands a file's bytes to wgpu as they are.
//! [`seal`] wraps the driver's data in a header naming who wrote it (this
//! crate's format, the wgpu release series, the adapter and its driver) and a
//! SHA-256 digest of everything after the digest; [`open`] gives the data back
//! only when every byte is as it was written, for the same key.
//!
//! What it guards against: truncated, damaged or extended files, another
//! adapter's, driver's or wgpu release's data, and files that are not
//! pipeline caches at all. A digest is not a signature: whoever can write the
//! file can also write a matching digest, just as they could write the
//! driver's own on-disk shader cache. Keep the file where only you can write.

use sha2::{Digest, Sha256};

/// The first bytes of every sealed cache.
const MAGIC: &[u8; 16] = b"wgpu-conv2d-plc\x01";
const DIGEST_LEN: usize = 32;

/// What loading pipeline cache data did
/// ([`GpuContext::load_pipeline_cache`](crate::GpuContext::load_pipeline_cache)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineCacheLoad {
    /// The data passed every check and later kernels compile through it.
    Accepted,
    /// The data was refused, for the reason given, before the driver saw it
    /// (or by wgpu's own header check); kernels compile as without a cache.
    Refused(String),
    /// There was no file: kernels compile as without a cache.
    Missing,
    /// This adapter offers no pipeline cache (wgpu has one on Vulkan only):
    /// nothing was read.
    Unsupported,
}

impl PipelineCacheLoad {
    /// Whether the data was accepted.
    pub fn accepted(&self) -> bool {
        matches!(self, Self::Accepted)
    }
}

/// What the data belongs to: sealed data opens only under the same key. The
/// wgpu release series is the one Cargo.toml asks for; within it wgpu's own
/// header (checked after this one) tells its format versions apart.
pub(crate) fn key(info: &wgpu::AdapterInfo) -> String {
    format!(
        "wgpu-conv2d {}; wgpu 30; adapter {:?}; backend {:?}; vendor {:#x}; device {:#x}; driver {:?} {:?}",
        env!("CARGO_PKG_VERSION"),
        info.name,
        info.backend,
        info.vendor,
        info.device,
        info.driver,
        info.driver_info
    )
}

/// `data` under `key`, with its digest.
pub(crate) fn seal(key: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + key.len() + 8 + data.len());
    body.extend_from_slice(&(key.len() as u32).to_le_bytes());
    body.extend_from_slice(key.as_bytes());
    body.extend_from_slice(&(data.len() as u64).to_le_bytes());
    body.extend_from_slice(data);
    let mut sealed = Vec::with_capacity(MAGIC.len() + DIGEST_LEN + body.len());
    sealed.extend_from_slice(MAGIC);
    sealed.extend_from_slice(&Sha256::digest(&body));
    sealed.extend_from_slice(&body);
    sealed
}

/// The data sealed in `bytes`, if they are exactly what [`seal`] wrote for
/// `key`; else why not.
pub(crate) fn open<'a>(bytes: &'a [u8], key: &str) -> Result<&'a [u8], String> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err("not a wgpu-conv2d pipeline cache (its first bytes differ)".into());
    };
    let Some((digest, body)) = rest.split_at_checked(DIGEST_LEN) else {
        return Err(format!(
            "truncated: {} bytes, shorter than the header",
            bytes.len()
        ));
    };
    if Sha256::digest(body).as_slice() != digest {
        return Err(
            "damaged: its SHA-256 digest does not match its contents (truncated or changed)".into(),
        );
    }
    // The digest matched, so the fields below are what `seal` wrote; they are
    // still read with checked arithmetic.
    let (len, body) = body
        .split_first_chunk::<4>()
        .ok_or("no key length after the digest")?;
    let len = u32::from_le_bytes(*len) as usize;
    let (written_key, body) = body
        .split_at_checked(len)
        .ok_or("the key is longer than the file")?;
    if written_key != key.as_bytes() {
        return Err(format!(
            "written for another adapter, driver or release: {:?}, this is {key:?}",
            String::from_utf8_lossy(written_key)
        ));
    }
    let (len, data) = body
        .split_first_chunk::<8>()
        .ok_or("no data length after the key")?;
    if u64::from_le_bytes(*len) != data.len() as u64 {
        return Err("the data's length differs from the recorded one".into());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "wgpu-conv2d test; adapter \"a\"";

    #[test]
    fn sealed_data_opens_under_its_own_key_only() {
        let data: Vec<u8> = (0..=255).collect();
        let sealed = seal(KEY, &data);
        assert_eq!(open(&sealed, KEY).unwrap(), data.as_slice());
        assert_eq!(open(&seal(KEY, &[]), KEY).unwrap(), &[] as &[u8]);
        let foreign = open(&sealed, "another adapter").unwrap_err();
        assert!(foreign.contains("another adapter"), "{foreign}");
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let sealed = seal(KEY, b"driver data, 32 bytes or so long");
        for len in 0..sealed.len() {
            assert!(open(&sealed[..len], KEY).is_err(), "truncated to {len}");
        }
        for at in 0..sealed.len() {
            for bit in [0x01u8, 0x80] {
                let mut flipped = sealed.clone();
                flipped[at] ^= bit;
                assert!(open(&flipped, KEY).is_err(), "bit {bit:#x} of byte {at}");
            }
        }
        let mut extended = sealed.clone();
        extended.push(0);
        assert!(open(&extended, KEY).unwrap_err().contains("damaged"));
        assert!(open(b"not a pipeline cache", KEY).is_err());
    }
}
