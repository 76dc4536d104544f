//! The host's Rust toolchain: its triple, and the raw image made with its `rust-objcopy`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The host's target triple, as `rustc -vV` reports it (asked once per process).
pub fn host_triple() -> &'static str {
    static TRIPLE: OnceLock<String> = OnceLock::new();
    TRIPLE.get_or_init(|| {
        let out = Command::new("rustc").arg("-vV").output().map(|o| o.stdout).unwrap_or_default();
        String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
            .unwrap_or_else(|| "x86_64-unknown-linux-gnu".into())
    })
}

/// The toolchain's `rust-objcopy` (rust-web-llvm), or `llvm-objcopy` from PATH.
fn objcopy() -> PathBuf {
    let out = Command::new("rustc").args(["--print", "sysroot"]).output().map(|o| o.stdout).unwrap_or_default();
    let sysroot = String::from_utf8_lossy(&out).trim().to_string();
    let p = Path::new(&sysroot).join("lib/rustlib").join(host_triple()).join("bin/rust-objcopy");
    if p.exists() {
        p
    } else {
        PathBuf::from("llvm-objcopy")
    }
}

/// Makes the raw image (what the board's loader expects) next to the ELF.
pub fn raw_image(elf: &Path) -> Result<PathBuf, String> {
    let img = elf.with_extension("img");
    let st = Command::new(objcopy())
        .args(["-O", "binary"])
        .arg(elf)
        .arg(&img)
        .status()
        .map_err(|e| format!("cannot run rust-objcopy: {e}"))?;
    if !st.success() {
        return Err(format!("rust-objcopy failed on {}", elf.display()));
    }
    Ok(img)
}
