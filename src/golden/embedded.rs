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
pub use suite::{CASES, DIGEST, STAMPS, TORCH};

/// Whether the golden directory `dir` is still, file for file, what was embedded: the same
/// paths, lengths and modification times as at build time (`stamps`, from build.rs). A
/// checkout edited (or switched to another branch) since the build is not.
pub fn unchanged_since_build(dir: &Path, stamps: &[(&str, u64, u128)]) -> bool {
    let mut found = Vec::new();
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(
                    p.strip_prefix(root)
                        .map(|r| r.to_string_lossy().replace('\\', "/"))
                        .unwrap_or_default(),
                );
            }
        }
    }
    walk(dir, dir, &mut found);
    found.len() == stamps.len()
        && stamps.iter().all(|(rel, len, mtime)| {
            let Ok(m) = std::fs::metadata(dir.join(rel)) else {
                return false;
            };
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            m.len() == *len && t == *mtime
        })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_edited_since_the_build_is_not_the_embedded_suite() {
        let dir = std::env::temp_dir().join(format!("nllspec-stamps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("op")).unwrap();
        std::fs::write(dir.join("op/a.json"), "{}").unwrap();
        let m = std::fs::metadata(dir.join("op/a.json")).unwrap();
        let t = m
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        assert!(unchanged_since_build(&dir, &[("op/a.json", 2, t)]));
        assert!(
            !unchanged_since_build(&dir, &[("op/a.json", 3, t)]),
            "another length"
        );
        assert!(
            !unchanged_since_build(&dir, &[("op/a.json", 2, t + 1)]),
            "touched since"
        );
        std::fs::write(dir.join("op/b.json"), "{}").unwrap();
        assert!(
            !unchanged_since_build(&dir, &[("op/a.json", 2, t)]),
            "a file added"
        );
        // the real checkout, as this test binary was built from it
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
        assert!(
            unchanged_since_build(&checkout, STAMPS),
            "cargo rebuilds when golden/ changes"
        );
    }
}
