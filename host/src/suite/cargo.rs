//! Building the suite's images with cargo, and running the host crate's own unit tests.

use super::table::Build;
use crate::board::{Board, Variant};
use crate::toolchain::host_triple;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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
    host_crate_tests(root, "host", &["--manifest-path", "host/Cargo.toml"], Duration::from_secs(600))
}

/// Runs the loom models (`model/`: the library crates on the platform's loom machine); returns
/// (passed, failed). From `model/`, so that its `.cargo/config.toml` (`--cfg loom`) applies.
pub fn model_tests(root: &Path) -> (u32, u32) {
    host_crate_tests(&root.join("model"), "model", &["--manifest-path", "Cargo.toml"], Duration::from_secs(1200))
}

/// Runs the library crates on the platform's host machine (threads as cores): `hosted/`'s tests
/// in a debug and a release build, the crates' doc examples, and the negative controls (bugs
/// the hosted tests must catch); returns (passed, failed).
pub fn hosted_tests(root: &Path) -> (u32, u32) {
    let limit = Duration::from_secs(300);
    let runs: [(&str, &[&str]); 3] = [
        ("hosted", &["--manifest-path", "hosted/Cargo.toml"]),
        ("hosted-release", &["--manifest-path", "hosted/Cargo.toml", "--release"]),
        ("doc-examples", &["--doc", "-p", "quiescent-platform", "-p", "quiescent-rcu", "-p", "quiescent-sync"]),
    ];
    let (mut p, mut f) = runs.iter().fold((0, 0), |(p, f), (name, args)| {
        let (p2, f2) = host_crate_tests(root, name, args, limit);
        (p + p2, f + f2)
    });
    for (bug, test, case) in HOSTED_CONTROLS {
        if hosted_control(root, bug, test, case, limit) {
            p += 1;
        } else {
            f += 1;
        }
    }
    (p, f)
}

/// Bugs built into the crates (`--cfg quiescent_inject`, the test-only hook the torture suite
/// uses on the firmware) that a hosted test file must catch in a release build: a grace period
/// that leaves a core out, an interrupt on an idle core that is not a reader, a percpu-rwsem
/// writer that does not wait for the readers it folded, a percpu_ref switch that folds without
/// a grace period.
const HOSTED_CONTROLS: [(&str, &str, &str); 4] = [
    ("gp-skip-core", "rcu", "grace_periods_wait_for_a_reader_on_every_core"),
    ("irq-eqs", "rcu", "an_interrupt_on_a_waiting_core_is_a_reader"),
    ("rwsem-no-drain", "sync", "percpu_rwsem_keeps_writers_and_readers_apart"),
    ("ref-fold-no-gp", "sync", "percpu_ref_killed_under_gets_and_puts_is_released_once"),
];

/// Builds `hosted/` with `bug` injected (its own target directory) and runs `tests/<test>.rs`:
/// true if it failed (or hung), as it must. Prints one line, not the failing run's output.
fn hosted_control(root: &Path, bug: &str, test: &str, case: &str, limit: Duration) -> bool {
    let name = format!("hosted::{test}_catches_{}", bug.replace('-', "_"));
    let flags = format!("--cfg quiescent_inject=\"{bug}\"");
    let dir = root.join("target").join("hosted-inject").join(bug);
    let args = ["--manifest-path", "hosted/Cargo.toml", "--release", "--test", test];
    let env = [("RUSTFLAGS", flags.as_str()), ("CARGO_TARGET_DIR", dir.to_str().unwrap_or("target/hosted-inject"))];
    let (status, text) = cargo_test(root, &args, &env, limit, false);
    let failed = text.lines().filter(|l| l.starts_with("test ") && l.ends_with("FAILED")).count();
    // The case written to catch this bug must be among them.
    let caught = text.lines().any(|l| l == format!("test {case} ... FAILED"));
    // libtest's first line: the test binary ran. Without it, a kill at the limit stopped the
    // build (or cargo never started), which catches nothing.
    let ran = text.lines().any(|l| l.starts_with("running "));
    match status {
        None if ran => {
            println!("test {name} ... ok (the run hung and was killed after {} s)", limit.as_secs());
            true
        }
        None => {
            println!(
                "test {name} ... FAILED: cargo did not start, or the build with {bug} injected did not finish within {} s",
                limit.as_secs()
            );
            false
        }
        Some(st) if !st.success() && caught => {
            println!("test {name} ... ok ({case} failed, {failed} test(s) in all)");
            true
        }
        Some(st) if !st.success() && failed > 0 => {
            println!("test {name} ... FAILED: {case}, written to catch {bug}, passed ({failed} other test(s) failed)");
            false
        }
        Some(st) if !st.success() => {
            println!("test {name} ... FAILED: the build or run with {bug} injected failed before any test did");
            false
        }
        Some(_) => {
            println!("test {name} ... FAILED: every test in hosted/tests/{test}.rs passed with {bug} injected");
            false
        }
    }
}

/// `cargo test` of host code in the repository (`args` says which), killed after `limit` (a
/// hang is a failure that names the run; libtest names a test running for over 60 s); returns
/// (passed, failed).
fn host_crate_tests(root: &Path, name: &str, args: &[&str], limit: Duration) -> (u32, u32) {
    let (status, text) = cargo_test(root, args, &[], limit, true);
    if status.is_none() && text.is_empty() {
        println!("test {name}::cargo_test ... FAILED: cannot run cargo");
        return (0, 1);
    }
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
    match status {
        None => {
            println!("test {name}::cargo_test ... FAILED: killed after {} s (a hang; the last test named above, or the one libtest says has been running)", limit.as_secs());
            f += 1;
        }
        Some(st) if !st.success() && f == 0 => f = 1,
        Some(_) => {}
    }
    (p, f)
}

/// Runs `cargo test <args> --target <host>` from `root` with `env`, killed after `limit`; returns
/// its exit status (`None`: killed, or it could not start) and its standard output, echoed line
/// by line as it comes if `echo` (so that a hang shows what ran before it).
fn cargo_test(
    root: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
    echo: bool,
) -> (Option<ExitStatus>, String) {
    let child = Command::new("cargo")
        .arg("test")
        .args(args)
        .args(["--target", host_triple()])
        .envs(env.iter().copied())
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(if echo { Stdio::inherit() } else { Stdio::null() })
        .process_group(0) // its own group: a hung test binary (cargo's child) is killed with it
        .spawn();
    let Ok(mut child) = child else {
        return (None, String::new());
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if echo {
                println!("{line}");
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                // SAFETY: kill(2) on the child's process group (its id is the group's, from
                // process_group(0)); it touches no memory of ours.
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
        }
    };
    (status, reader.join().unwrap_or_default())
}
