//! Embeds the golden suite, deflated, in the library, so that an installed `nllspec` (from
//! `cargo install`, or a wheel) runs it without a checkout of this repository; and records
//! the suite's identity (torch version, case count, digest) for `nllspec --version`.
//!
//! The archive is the golden/ tree's `*.json` files, sorted by path, each as
//! `u32 path length, path, u64 length, bytes` (little-endian), deflated as a whole.

//! Without the `embedded` feature (a framework's gate) it does nothing.

#[cfg(feature = "embedded")]
use sha2::{Digest, Sha256};
#[cfg(feature = "embedded")]
use std::io::Write;
#[cfg(feature = "embedded")]
use std::path::{Path, PathBuf};

#[cfg(not(feature = "embedded"))]
fn main() {}

#[cfg(feature = "embedded")]
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

#[cfg(feature = "embedded")]
fn main() {
    println!("cargo:rerun-if-changed=golden");
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("golden");
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.sort();
    let mut raw = Vec::new();
    let mut digest = Sha256::new();
    let (mut cases, mut torch) = (0usize, String::new());
    // Each file's length and modification time as built: at run time, the checkout is the
    // default suite only while it is still exactly what was embedded.
    let mut stamps = String::new();
    for p in &paths {
        let rel = p
            .strip_prefix(&root)
            .expect("below golden/")
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(p).expect("a readable golden file");
        let mtime = std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        stamps.push_str(&format!("    ({rel:?}, {}, {mtime}),\n", bytes.len()));
        let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("golden files are JSON");
        cases += doc["cases"].as_array().map_or(0, Vec::len);
        if let Some(t) = doc["generator"]["torch"].as_str() {
            torch = t.to_string();
        }
        digest.update(rel.as_bytes());
        digest.update(&bytes);
        raw.extend_from_slice(&(rel.len() as u32).to_le_bytes());
        raw.extend_from_slice(rel.as_bytes());
        raw.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        raw.extend_from_slice(&bytes);
    }
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(&raw).expect("deflate in memory");
    let packed = enc.finish().expect("deflate in memory");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("golden.deflate"), packed).expect("OUT_DIR is writable");
    let hex: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        out.join("suite.rs"),
        format!(
            "/// sha256 of the embedded suite's paths and bytes.\npub const DIGEST: &str = \"{hex}\";\n\
             /// Golden cases embedded.\npub const CASES: usize = {cases};\n\
             /// The torch that wrote them.\npub const TORCH: &str = \"{torch}\";\n\
             /// The checkout's files as embedded: (path below golden/, length, mtime in ns).\n\
             pub const STAMPS: &[(&str, u64, u128)] = &[\n{stamps}];\n"
        ),
    )
    .expect("OUT_DIR is writable");
}
