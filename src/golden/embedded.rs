//! The golden suite compiled into the binary (see build.rs), for an installed `nllspec` that
//! has no checkout of this repository beside it.
//!
//! The loader, the runner and the libtest harness all read golden files from a directory, so
//! the embedded suite is written out once, to a cache directory named by its digest, and
//! read from there like any other: one loading path, and reports name real files.

use flate2::read::DeflateDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

mod suite {
    include!(concat!(env!("OUT_DIR"), "/suite.rs"));
}
pub use suite::{CASES, DIGEST, TORCH};

static PACKED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/golden.deflate"));

/// The embedded files: (path below golden/, bytes).
pub fn files() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut raw = Vec::new();
    DeflateDecoder::new(PACKED).read_to_end(&mut raw)?;
    let bad = || std::io::Error::other("the embedded golden archive is truncated");
    let mut out = Vec::new();
    let mut rest: &[u8] = &raw;
    let mut take = |n: usize| -> std::io::Result<Vec<u8>> {
        if rest.len() < n {
            return Err(bad());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head.to_vec())
    };
    let mut left = raw.len();
    while left > 0 {
        let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        let path = String::from_utf8(take(len)?).map_err(|_| bad())?;
        let size = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad())?);
        let bytes = take(usize::try_from(size).map_err(|_| bad())?)?;
        left -= 4 + len + 8 + bytes.len();
        out.push((path, bytes));
    }
    Ok(out)
}

/// Where the embedded suite is written: `$NLLSPEC_CACHE`, else `$XDG_CACHE_HOME/nllspec`, else
/// `~/.cache/nllspec`, else the temporary directory; then `golden-<digest>`.
fn cache_dir() -> PathBuf {
    let base = std::env::var_os("NLLSPEC_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("nllspec")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/nllspec")))
        .unwrap_or_else(|| std::env::temp_dir().join("nllspec"));
    base.join(format!("golden-{}", &DIGEST[..16]))
}

/// The embedded suite as a directory, written on first use. Another process may be writing
/// it at the same moment: each writes a directory of its own and renames it into place.
pub fn directory() -> std::io::Result<PathBuf> {
    let dir = cache_dir();
    if dir.is_dir() {
        return Ok(dir);
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".golden-{}-{}", std::process::id(), &DIGEST[..16]));
    let _ = std::fs::remove_dir_all(&tmp);
    for (path, bytes) in files()? {
        let p = tmp.join(&path);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(p, bytes)?;
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e),
    }
}
