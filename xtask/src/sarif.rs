//! The SARIF 2.1.0 JSON schema for the audit's tests, from a registry package that ships it:
//! the `serde-sarif` crate on crates.io carries the OASIS schema as `src/schema.json` (it
//! generates its types from it). The crate file is pinned by its SHA-256 and unpacked once into
//! `$HOME/.cache/busbar/sarif/`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cache_dir;
use crate::ci::step;

const CRATE: &str = "serde-sarif-0.8.0";
const URL: &str = "https://static.crates.io/crates/serde-sarif/serde-sarif-0.8.0.crate";
const SHA256: &str = "a053c46f18a8043570d4e32fefc4c6377f82bf29ec310a33e93f273048e3b0be";

/// The schema file, fetched if missing.
pub(crate) fn schema() -> Result<PathBuf> {
    let dir = cache_dir().join("sarif");
    let schema = dir.join("sarif-schema-2.1.0.json");
    if schema.is_file() {
        return Ok(schema);
    }
    std::fs::create_dir_all(&dir).context("cannot create the SARIF cache")?;
    let archive = dir.join(format!("{CRATE}.crate"));
    // python3 is on every machine the test command supports; it speaks https.
    let mut fetch = Command::new("python3");
    fetch
        .args([
            "-c",
            "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])",
            URL,
        ])
        .arg(&archive);
    step(&format!("download {CRATE}.crate (the SARIF schema)"), fetch)?;
    let bytes = std::fs::read(&archive).context("cannot read the downloaded crate")?;
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    if digest != SHA256 {
        bail!("{CRATE}.crate has SHA-256 {digest}, expected {SHA256}");
    }
    let mut untar = Command::new("tar");
    untar.arg("-xzf").arg(&archive).arg("-C").arg(&dir).arg(format!("{CRATE}/src/schema.json"));
    step("tar -xzf (the SARIF schema)", untar)?;
    std::fs::rename(dir.join(CRATE).join("src/schema.json"), &schema)
        .context("cannot move the schema into place")?;
    Ok(schema)
}
