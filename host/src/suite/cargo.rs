//! Building the suite's images with cargo, and running the host crate's own unit tests.

use super::table::Build;
use crate::board::{Board, Variant};
use crate::toolchain::host_triple;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository's root (host/ is one level down).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("..")).to_path_buf()
}

/// Builds the test images for `board` and maps each test target's name to its executable. The
/// board's features and target directory are [`Board::cargo`]'s (as for `make` and the scripts,
/// through `qrun cargo`): virt is what plain `cargo test` builds, and the two boards' artifacts
/// never overwrite each other.
pub fn build_tests(root: &Path, board: Board) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut cmd = board.cargo(root, Variant::Qemu).command("test");
    cmd.args(["--no-run", "--message-format=json-render-diagnostics"]);
    let out = cmd.current_dir(root).stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the test images for {board} failed"));
    }
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v["reason"] != "compiler-artifact" {
            continue;
        }
        let (Some(name), Some(exe)) = (v["target"]["name"].as_str(), v["executable"].as_str()) else { continue };
        let is_test = v["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "test"));
        if is_test {
            map.insert(name.to_string(), PathBuf::from(exe));
        }
    }
    Ok(map)
}

/// Builds binary `name` of the firmware for `board` as `build` (not `Build::Test`) and returns
/// its executable. Fault-injection builds set `--cfg quiescent_inject="<bug>"` for the whole
/// build (the library crates' test-only hook, not a feature of theirs) and go to their own target
/// directory ([`Variant::Inject`]), so they never replace the artifacts users run.
pub fn build_bin(root: &Path, board: Board, name: &str, build: Build) -> Result<PathBuf, String> {
    let variant = if matches!(build, Build::Inject(_)) { Variant::Inject } else { Variant::Qemu };
    let mut cmd = board.cargo(root, variant).command("build");
    cmd.args(["--bin", name, "--message-format=json-render-diagnostics"]);
    match build {
        Build::Release => {
            cmd.arg("--release");
        }
        Build::Debug => {}
        Build::Inject(bug) => {
            cmd.arg("--release");
            // Added to the target's rustflags in .cargo/config.toml (cargo joins the arrays).
            cmd.args([
                "--config",
                &format!("target.aarch64-unknown-none.rustflags=[\"--cfg\", \"quiescent_inject=\\\"{bug}\\\"\"]"),
            ]);
        }
        Build::Test => return Err("test images are built by build_tests".into()),
    }
    let out = cmd.current_dir(root).stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building {name} ({build:?}) for {board} failed"));
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v["reason"] == "compiler-artifact" && v["target"]["name"] == name {
            if let Some(exe) = v["executable"].as_str() {
                return Ok(PathBuf::from(exe));
            }
        }
    }
    Err(format!("cargo built no executable named {name}"))
}

/// Runs the host crate's own unit tests; returns (passed, failed).
pub fn host_tests(root: &Path) -> (u32, u32) {
    host_crate_tests(root, "host", "host/Cargo.toml")
}

/// Runs the loom models (`model/`: the library crates on the platform's loom machine); returns
/// (passed, failed). From `model/`, so that its `.cargo/config.toml` (`--cfg loom`) applies.
pub fn model_tests(root: &Path) -> (u32, u32) {
    host_crate_tests(&root.join("model"), "model", "Cargo.toml")
}

/// `cargo test` of a host crate in the repository; returns (passed, failed).
fn host_crate_tests(root: &Path, name: &str, manifest: &str) -> (u32, u32) {
    let out = Command::new("cargo")
        .args(["test", "-q", "--manifest-path", manifest, "--target", host_triple()])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output();
    let Ok(out) = out else {
        println!("test {name}::cargo_test ... FAILED: cannot run cargo");
        return (0, 1);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let (mut p, mut f) = (0, 0);
    for l in text.lines() {
        // "test result: ok. 4 passed; 0 failed; 0 ignored; ..."
        if let Some(rest) = l.strip_prefix("test result: ") {
            let nums: Vec<u32> = rest
                .split([';', '.'])
                .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
                .collect();
            if nums.len() >= 2 {
                p += nums[0];
                f += nums[1];
            }
        }
    }
    if !out.status.success() && f == 0 {
        f = 1;
    }
    (p, f)
}
