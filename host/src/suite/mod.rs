//! `qrun suite`: every on-target test image in every configuration, then the host's unit tests.

use crate::qemu::{self, RunConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// What a run must show to count as passed.
enum Expect {
    /// Every case passes and the image reports its summary.
    Pass,
    /// The image must exit non-zero and print this text (a deliberate failure or fault).
    Fail(&'static str),
    /// The runner must kill the image after `secs` and say this (a deliberate hang).
    Timeout(u64, &'static str),
    /// Every case passes, and the output passes this host-side check (given the core count).
    PassAnd(&'static str, fn(&str, u32) -> Result<(), String>),
    /// The torture image ends with `End of test: SUCCESS` and exit code 0.
    TortureSucceeds,
    /// The torture image (built with an injected bug) ends with `End of test: FAILURE`, a
    /// non-zero exit, and at least one of these failure reports (the counter that must catch it).
    TortureCatches(&'static [&'static str]),
}

/// How a run's image is built.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Build {
    /// A test image (`cargo test --no-run`, the test profile: debug assertions on).
    Test,
    /// The `torture` binary, release profile (what users run: `rcu_read_lock` is no instruction).
    Release,
    /// The `torture` binary, dev profile (debug assertions on).
    Debug,
    /// The `torture` binary, release profile, with the `inject-<name>` fault injection.
    Inject(&'static str),
}

/// One boot of one test image.
struct Run {
    bin: &'static str,
    build: Build,
    /// Interrupts may land between any two instructions (see qemu::RunConfig::precise_irq).
    precise_irq: bool,
    smp: u32,
    el2: bool,
    append: &'static str,
    expect: Expect,
}

const fn pass(bin: &'static str, smp: u32) -> Run {
    Run { precise_irq: false, bin, build: Build::Test, smp, el2: false, append: "", expect: Expect::Pass }
}

/// Seconds each torture run in the suite lasts (`make torture` is the long soak).
const SHORT_TORTURE: &str = "duration=10";

/// The short torture (every torture at once) on `smp` cores, built as `build`.
fn torture(build: Build, smp: u32) -> Run {
    let append: &'static str = Box::leak(format!("torture=all {SHORT_TORTURE}").into_boxed_str());
    Run { bin: "torture", build, append, expect: Expect::TortureSucceeds, ..pass("torture", smp) }
}

/// The short torture of `which` (rcu, lock or ref) built with fault injection `bug`: it must
/// report FAILURE through one of `caught_by`.
fn injected(bug: &'static str, which: &str, caught_by: &'static [&'static str]) -> Run {
    // Up to 30 s, though the run ends a second after the first failure it reports (typically
    // within 1 to 5 s of the start).
    let append: &'static str = Box::leak(format!("torture={which} duration=30").into_boxed_str());
    Run { bin: "torture", build: Build::Inject(bug), append, expect: Expect::TortureCatches(caught_by), ..pass("torture", 4) }
}

/// Each injected bug and the counter that must catch it.
fn fault_injection_runs() -> Vec<Run> {
    vec![
        // A grace period that does not wait for one core: its readers see objects retired
        // more than one grace period ago.
        injected("gp-skip-core", "rcu", &["rcu-torture: !!! too-short grace period", "rcu-torture: !!! use-after-free"]),
        // Interrupt entry that leaves the core in its extended quiescent state (review hazard
        // 1 reintroduced): the tick's and IPI readers on cores in blocking waits are unprotected.
        injected("irq-eqs", "rcu", &["rcu-torture: !!! too-short grace period", "rcu-torture: !!! use-after-free"]),
        // percpu_down_write that does not wait for the readers to drain.
        injected("rwsem-no-drain", "lock", &["percpu_rwsem_lock-torture: !!! exclusion violated"]),
        // percpu_ref folding its counters without a grace period: in-flight gets and puts are
        // lost, so release comes early (while references are held) or twice, or never.
        injected(
            "ref-fold-no-gp",
            "ref",
            &[
                "percpu_ref-torture: !!! release twice",
                "percpu_ref-torture: !!! use after release",
                "percpu_ref-torture: !!! confirm after release",
                "percpu_ref-torture: !!! release missing",
                "percpu_ref-torture: !!! misuse reports",
            ],
        ),
    ]
}

/// Image `bin` booted with `key=kind` on its command line; must exit non-zero showing `text`.
fn fails_with(bin: &'static str, key: &str, kind: &str, text: &'static str) -> Run {
    let append: &'static str = Box::leak(format!("{key}={kind}").into_boxed_str());
    Run { append, expect: Expect::Fail(text), ..pass(bin, 2) }
}

/// The fault image, made to take fault `kind`.
fn fault(kind: &str, text: &'static str) -> Run {
    fails_with("fault", "fault", kind, text)
}

/// The RCU misuse image, made to commit `kind`.
fn misuse(kind: &str, text: &'static str) -> Run {
    fails_with("rcu_misuse", "misuse", kind, text)
}

/// The console check on 4 cores, and the runner's own failure paths (a failing case on core 1,
/// a hang on core 1) on `smp` cores.
fn console_and_runner(smp: u32) -> Vec<Run> {
    vec![
        Run { expect: Expect::PassAnd("console::host_sees_whole_lines", whole_lines), ..pass("console", 4) },
        Run {
            expect: Expect::Fail("test selftest::deliberately_failing_case ... FAILED: 1 + 1 == 3 (deliberate)"),
            ..pass("selftest", smp)
        },
        Run {
            expect: Expect::Timeout(8, "while running hang::core_1_never_finishes; cores not finished: 1"),
            ..pass("hang", smp)
        },
    ]
}

/// The suite for QEMU `virt`. Core counts: 4 is the demo's, 1 catches code that assumes a peer,
/// 8 is the compile-time maximum.
fn virt_runs() -> Vec<Run> {
    vec![
        pass("boot", 4),
        pass("boot", 1),
        pass("boot", 8),
        // More cores than the run may use: the extra ones are named and left off.
        Run { append: "maxcpus=2", expect: Expect::PassAnd("boot::cores_beyond_the_limit_are_reported", beyond_limit), ..pass("boot", 4) },
        Run { el2: true, append: "expect-entry-el=2", ..pass("boot", 4) },
        Run { el2: true, append: "expect-entry-el=2", ..pass("boot", 1) },
        pass("percpu", 4),
        pass("percpu", 1),
        pass("mmu", 4),
        pass("mmu", 1),
        pass("irq", 4),
        pass("irq", 1),
        // TCG takes interrupts only between translation blocks; this run lets them land inside
        // this_cpu_add's ldr/add/str, so the restartable-sequence fix-up is really exercised.
        Run { precise_irq: true, ..pass("irq", 2) },
        pass("idle", 4),
        pass("idle", 1),
        pass("rcu", 4),
        pass("rcu", 1),
        pass("rwsem", 4),
        pass("rwsem", 1),
        pass("percpu_ref", 4),
        pass("percpu_ref", 1),
        pass("litmus", 4),
        misuse("qs-in-reader", "quiescent state inside RCU read-side critical section on core 0"),
        misuse("sync-in-reader", "synchronize_rcu inside RCU read-side critical section on core 0"),
        misuse("idle-in-reader", "quiescent state inside RCU read-side critical section on core 1"),
        misuse("unbalanced-unlock", "rcu_read_unlock without rcu_read_lock on core 0"),
        misuse("use-after-free", "RCU list: reader reached a freed node"),
        misuse("percpu-up-read-unbalanced", "percpu_up_read without percpu_down_read"),
        misuse("percpu-up-write-not-held", "percpu_up_write by core 0, which does not hold it"),
        misuse("percpu-down-write-in-reader", "percpu_down_write inside RCU read-side critical section on core 0"),
        misuse("rcu-barrier-in-callback", "rcu_barrier called from an RCU callback on core 0 (it would wait for itself)"),
        misuse("percpu-ref-wait-in-callback", "percpu_ref: waiting for a mode switch from an RCU callback on core 0"),
        misuse("percpu-ref-switch-in-reader", "percpu_ref_switch_to_percpu inside RCU read-side critical section on core 0"),
        misuse("percpu-ref-reinit-in-reader", "percpu_ref_reinit inside RCU read-side critical section on core 0"),
        misuse("synchronize-rcu-in-irq", "synchronize_rcu in interrupt context on core 1"),
        misuse("reader-in-quiescent-wait", "rcu_read_lock while RCU is not watching core 0 (extended quiescent state)"),
        misuse("percpu-ref-get-in-quiescent-wait", "percpu_ref_get while RCU is not watching core 0 (extended quiescent state)"),
        fault("unmapped", "EXCEPTION on core 0: data abort (read) translation fault"),
        fault("undefined", "EXCEPTION on core 0: unknown reason / undefined instruction"),
        fault("write-text", "EXCEPTION on core 0: data abort (write) permission fault"),
        fault("exec-data", "EXCEPTION on core 0: instruction abort permission fault"),
        fault("stack-overflow", "stack overflow on core 1"),
        // The short torture in the build users run and in the debug build, then each injected
        // bug, which it must catch.
        torture(Build::Release, 4),
        torture(Build::Debug, 4),
    ]
    .into_iter()
    .chain(fault_injection_runs())
    .chain(console_and_runner(2))
    .collect()
}

/// The suite for QEMU `raspi4b` (the Pi 4 board build): always 4 cores, always entered at EL2 (the
/// firmware's and QEMU's way), so the 1/8-core and `--el2` variants of `virt_runs` do not apply.
/// The kernel command line reaches the image through a minimal DTB the runner passes with `-dtb`
/// (qemu.rs), as cmdline.txt does on the Pi, so the bootarg-driven images run here too.
fn rpi4_runs() -> Vec<Run> {
    let on4 = |r: Run| Run { smp: 4, ..r };
    vec![
        pass("boot", 4),
        Run { append: "expect-entry-el=2", ..pass("boot", 4) },
        // The spin-table release path names a core that never comes up: `hold-core=3` makes the
        // board leave core 3 parked; the boot image's online check fails and the report is seen.
        Run {
            append: "hold-core=3",
            expect: Expect::Fail("core 3 (MPIDR 0x3) did not come online within 2000 ms"),
            ..pass("boot", 4)
        },
        pass("percpu", 4),
        pass("mmu", 4),
        pass("irq", 4),
        pass("idle", 4),
        pass("rcu", 4),
        pass("rwsem", 4),
        pass("percpu_ref", 4),
        on4(misuse("qs-in-reader", "quiescent state inside RCU read-side critical section on core 0")),
        on4(misuse("use-after-free", "RCU list: reader reached a freed node")),
        on4(fault("unmapped", "EXCEPTION on core 0: data abort (read) translation fault")),
        on4(fault("undefined", "EXCEPTION on core 0: unknown reason / undefined instruction")),
        on4(fault("write-text", "EXCEPTION on core 0: data abort (write) permission fault")),
        on4(fault("exec-data", "EXCEPTION on core 0: instruction abort permission fault")),
        on4(fault("stack-overflow", "stack overflow on core 1")),
        torture(Build::Release, 4),
    ]
    .into_iter()
    .chain(console_and_runner(4))
    .collect()
}

/// The console image's stress lines arrived whole: for every core, `console-stress core C seq S`
/// for S = 0..LINES in order, and no malformed frame.
pub fn whole_lines(text: &str, cores: u32) -> Result<(), String> {
    if text.contains("malformed") {
        return Err("a malformed defmt frame arrived (interleaved output?)".into());
    }
    let mut next = vec![0u32; cores as usize];
    let mut total = None;
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("console-stress core ") else { continue };
        let w: Vec<&str> = rest.split_whitespace().collect();
        // "C seq S of N payload ..."
        let (Some(c), Some(s), Some(n)) = (
            w.first().and_then(|v| v.parse::<usize>().ok()),
            w.get(2).and_then(|v| v.parse::<u32>().ok()),
            w.get(4).and_then(|v| v.parse::<u32>().ok()),
        ) else {
            return Err(format!("garbled line: {l}"));
        };
        let payload_ok = l
            .split_once("payload [")
            .and_then(|(_, p)| p.strip_suffix(']'))
            .is_some_and(|p| p.split(", ").all(|b| b == c.to_string()));
        if w.get(5) != Some(&"payload") || !payload_ok {
            return Err(format!("torn line: {l}"));
        }
        total = Some(n);
        if c >= next.len() || next[c] != s {
            return Err(format!("core {c}: expected seq {}, got {s}", next.get(c).copied().unwrap_or(0)));
        }
        next[c] += 1;
    }
    let n = total.ok_or("no console-stress lines")?;
    for (c, &got) in next.iter().enumerate() {
        if got != n {
            return Err(format!("core {c}: {got} of {n} lines arrived"));
        }
    }
    Ok(())
}

/// `[fault=unmapped]` for a run with a command line, so results name their configuration.
fn suffix(append: &str) -> String {
    if append.is_empty() {
        String::new()
    } else {
        format!("[{append}]")
    }
}

/// The boot image with `maxcpus=2` on 4 cores named cores 2 and 3 as left off.
fn beyond_limit(text: &str, _cores: u32) -> Result<(), String> {
    for c in 2..4 {
        let want = format!("core {c} (MPIDR {c:#x}) is beyond the limit of 2 cores");
        if !text.contains(&want) {
            return Err(format!("no `{want}` report"));
        }
    }
    Ok(())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// Builds the test images for `board` and maps each test target's name to its executable.
/// virt is the default feature set in the default target directory (what `cargo test` builds);
/// rpi4 builds with `--no-default-features --features board-rpi4` into `target/rpi4` (as the
/// Makefile does), so the two boards' artifacts never overwrite each other.
fn build_tests(root: &Path, board: &str) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut cmd = Command::new("cargo");
    cmd.args(["test", "--no-run", "--message-format=json-render-diagnostics"]);
    if board == "rpi4" {
        cmd.args(["--no-default-features", "--features", "board-rpi4"]);
        cmd.env("CARGO_TARGET_DIR", root.join("target/rpi4"));
    }
    let out = cmd
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
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
/// its executable. Fault-injection builds go to their own target directory (`target/inject`, or
/// `target/rpi4-inject`), so they never replace the artifacts users run.
fn build_bin(root: &Path, board: &str, name: &str, build: Build) -> Result<PathBuf, String> {
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "--bin", name, "--message-format=json-render-diagnostics"]);
    let mut features = Vec::new();
    let mut dir = if board == "rpi4" { "target/rpi4".to_string() } else { "target".to_string() };
    if board == "rpi4" {
        cmd.arg("--no-default-features");
        features.push("board-rpi4".to_string());
    }
    match build {
        Build::Release => {
            cmd.arg("--release");
        }
        Build::Debug => {}
        Build::Inject(bug) => {
            cmd.arg("--release");
            features.push(format!("inject-{bug}"));
            dir.push_str(if board == "rpi4" { "-inject" } else { "/inject" });
        }
        Build::Test => return Err("test images are built by build_tests".into()),
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd.env("CARGO_TARGET_DIR", root.join(&dir));
    let out = cmd
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
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
fn host_tests(root: &Path) -> (u32, u32) {
    let triple = {
        let out = Command::new("rustc").arg("-vV").output().map(|o| o.stdout).unwrap_or_default();
        String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
            .unwrap_or_default()
    };
    let out = Command::new("cargo")
        .args(["test", "-q", "--manifest-path", "host/Cargo.toml", "--target", &triple])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output();
    let Ok(out) = out else {
        println!("test host::cargo_test ... FAILED: cannot run cargo");
        return (0, 1);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let (mut p, mut f) = (0, 0);
    for l in text.lines() {
        // "test result: ok. 4 passed; 0 failed; 0 ignored; ..."
        if let Some(rest) = l.strip_prefix("test result: ") {
            let nums: Vec<u32> = rest
                .split(|c: char| c == ';' || c == '.')
                .filter_map(|s| s.trim().split_whitespace().next().and_then(|n| n.parse().ok()))
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

/// Counts of one or more runs.
#[derive(Default)]
struct Tally {
    passed: u32,
    failed: u32,
    failures: Vec<String>,
}

/// Boots `elf` as run `r` on board `b` and checks it against the run's expectation.
fn execute(r: &Run, elf: &Path, b: &str, verbose: bool, t: &mut Tally) {
    let timeout_secs = match r.expect {
        Expect::Timeout(t, _) => t,
        // The short torture runs 10 s; the rest is boot, the final checks, and a loaded host.
        Expect::TortureSucceeds | Expect::TortureCatches(_) => 120,
        _ => RunConfig::default().timeout_secs,
    };
    let cfg = RunConfig {
        precise_irq: r.precise_irq,
        timeout_secs,
        board: b.to_string(),
        smp: r.smp,
        el2: r.el2,
        append: r.append.to_string(),
        verbose,
        ..RunConfig::default()
    };
    let build = match r.build {
        Build::Test => String::new(),
        Build::Release => ", release build".into(),
        Build::Debug => ", debug build".into(),
        Build::Inject(bug) => format!(", release build with inject-{bug}"),
    };
    let label = format!(
        "{} on {b}, {} core{}{}{build}{}",
        r.bin,
        r.smp,
        if r.smp == 1 { "" } else { "s" },
        if r.el2 { ", entered at EL2" } else if r.precise_irq { ", one instruction per TB" } else { "" },
        if r.build == Build::Test { String::new() } else { format!(" [{}]", r.append) }
    );
    println!("== {label}");
    let res = match qemu::run(elf, &cfg, &mut std::io::stdout()) {
        Ok(res) => res,
        Err(e) => {
            println!("test {}::boot ... FAILED: {e}", r.bin);
            t.failed += 1;
            t.failures.push(format!("{label}: {e}"));
            return;
        }
    };
    match r.expect {
        Expect::Pass | Expect::PassAnd(..) => {
            t.passed += res.passed;
            t.failed += res.failed;
            for f in &res.failures {
                t.failures.push(format!("{label}: {f}"));
            }
            if res.failed == 0 && (res.summary.is_none() || res.exit_code != 0) {
                println!("test {}::summary ... FAILED: image ended without its summary (exit {})", r.bin, res.exit_code);
                t.failures.push(format!("{label}: no summary"));
                t.failed += 1;
            }
            if let Expect::PassAnd(name, check) = r.expect {
                match check(&res.text, r.smp) {
                    Ok(()) => {
                        println!("test {name} ... ok");
                        t.passed += 1;
                    }
                    Err(e) => {
                        println!("test {name} ... FAILED: {e}");
                        t.failures.push(format!("{label}: {name}: {e}"));
                        t.failed += 1;
                    }
                }
            }
        }
        Expect::TortureSucceeds => {
            let name = format!("torture::{}", torture_case(r, b));
            if res.exit_code == 0 && res.text.contains("End of test: SUCCESS") {
                println!("test {name} ... ok");
                t.passed += 1;
            } else {
                let why = if res.text.contains("End of test: FAILURE") { "End of test: FAILURE".to_string() } else { format!("no verdict (exit {})", res.exit_code) };
                println!("test {name} ... FAILED: {why}");
                t.failures.push(format!("{label}: {why}"));
                t.failed += 1;
            }
        }
        Expect::TortureCatches(reports) => {
            let name = format!("torture::{}", torture_case(r, b));
            let seen = reports.iter().find(|rep| res.text.contains(*rep));
            if res.exit_code != 0 && res.exit_code != 124 && res.text.contains("End of test: FAILURE") && seen.is_some() {
                println!("test {name} ... ok (caught: `{}`)", seen.copied().unwrap_or_default());
                t.passed += 1;
            } else {
                println!(
                    "test {name} ... FAILED: the injected bug was not caught (exit {}; wanted End of test: FAILURE and one of {:?})",
                    res.exit_code, reports
                );
                t.failures.push(format!("{label}: injected bug not caught"));
                t.failed += 1;
            }
        }
        Expect::Timeout(_, text) => {
            if res.exit_code == 124 && res.text.contains(text) {
                println!("test {}::runner_names_the_hang ... ok (killed, report matched)", r.bin);
                t.passed += 1;
            } else {
                println!("test {}::runner_names_the_hang ... FAILED: wanted a timeout naming `{text}`, got exit {}", r.bin, res.exit_code);
                t.failures.push(format!("{label}: expected timeout not seen"));
                t.failed += 1;
            }
        }
        Expect::Fail(text) => {
            let ok = res.exit_code != 0 && res.exit_code != 124 && res.text.contains(text);
            if ok {
                println!("test {}::expected_failure{} ... ok (exit {}, report matched)", r.bin, suffix(r.append), res.exit_code);
                t.passed += 1;
            } else {
                println!(
                    "test {}::expected_failure{} ... FAILED: wanted a non-zero exit and `{text}`, got exit {}",
                    r.bin, suffix(r.append), res.exit_code
                );
                t.failures.push(format!("{label}: expected failure not seen"));
                t.failed += 1;
            }
        }
    }
}

/// The case name of a torture run: its build and board (`release_on_virt`,
/// `catches_inject_gp_skip_core`, ...).
fn torture_case(r: &Run, board: &str) -> String {
    match r.build {
        Build::Inject(bug) => format!("catches_inject_{}", bug.replace('-', "_")),
        Build::Debug => format!("debug_build_on_{board}_{}_cores_succeeds", r.smp),
        _ => format!("release_build_on_{board}_{}_cores_succeeds", r.smp),
    }
}

/// `cargo test`'s runner: if `elf` is a test image the suite knows (`<bin>-<hash>` in
/// `deps/`), runs it in every configuration the suite lists for `board`, with the same
/// expectations, and returns the exit code; otherwise `None` (boot it once, plainly).
pub fn run_image(elf: &Path, board: &str, verbose: bool) -> Option<ExitCode> {
    let name = elf.file_name()?.to_str()?;
    let (bin, hash) = name.rsplit_once('-')?;
    if hash.len() != 16 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let runs: Vec<Run> = if board == "rpi4" { rpi4_runs() } else { virt_runs() };
    let runs: Vec<Run> = runs.into_iter().filter(|r| r.bin == bin && r.build == Build::Test).collect();
    if runs.is_empty() {
        return None;
    }
    let mut t = Tally::default();
    for r in &runs {
        execute(r, elf, board, verbose, &mut t);
    }
    println!("{} passed, {} failed", t.passed, t.failed);
    Some(if t.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `qrun suite`: every image in every configuration for `board` (`virt`, `rpi4` or `all`),
/// then the host's unit tests.
pub fn run(board: &str, only: Option<&str>, verbose: bool) -> ExitCode {
    let root = repo_root();
    let boards: Vec<&str> = match board {
        "all" => vec!["virt", "rpi4"],
        "virt" => vec!["virt"],
        "rpi4" => vec!["rpi4"],
        b => {
            eprintln!("qrun: unknown board `{b}` (expected virt, rpi4 or all)");
            return ExitCode::from(2);
        }
    };
    let (mut passed, mut failed) = (0u32, 0u32);
    let mut failures = Vec::new();
    for b in &boards {
        let images = match build_tests(&root, b) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("qrun: {e}");
                println!("test {b}::build ... FAILED: {e}");
                failures.push(e);
                failed += 1;
                continue;
            }
        };
        let runs = if *b == "rpi4" { rpi4_runs() } else { virt_runs() };
        let mut bins: BTreeMap<Build, Result<PathBuf, String>> = BTreeMap::new();
        for r in runs {
            if only.is_some_and(|o| o != r.bin) {
                continue;
            }
            let elf = if r.build == Build::Test {
                match images.get(r.bin) {
                    Some(e) => e.clone(),
                    None => {
                        println!("test {}::image ... FAILED: no test image named {}", r.bin, r.bin);
                        failed += 1;
                        continue;
                    }
                }
            } else {
                match bins.entry(r.build).or_insert_with(|| build_bin(&root, b, r.bin, r.build)) {
                    Ok(e) => e.clone(),
                    Err(e) => {
                        println!("test {}::build ... FAILED: {e}", r.bin);
                        failures.push(e.clone());
                        failed += 1;
                        continue;
                    }
                }
            };
            let mut t = Tally::default();
            execute(&r, &elf, b, verbose, &mut t);
            passed += t.passed;
            failed += t.failed;
            failures.extend(t.failures);
        }
    }
    if only.is_none() || only == Some("host") {
        println!("== host unit tests (host/)");
        let (p, f) = host_tests(&root);
        passed += p;
        failed += f;
        if f > 0 {
            failures.push("host unit tests".into());
        }
    }
    if !failures.is_empty() {
        println!("\nfailures:");
        for f in &failures {
            println!("    {f}");
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::whole_lines;

    fn lines(cores: u32, n: u32) -> String {
        let mut s = String::new();
        for seq in 0..n {
            for c in 0..cores {
                s += &format!("console-stress core {c} seq {seq} of {n} payload [{c}, {c}]\n");
            }
        }
        s
    }

    #[test]
    fn whole_lines_accepts_complete_output() {
        assert_eq!(whole_lines(&lines(4, 3), 4), Ok(()));
    }

    #[test]
    fn whole_lines_rejects_missing_reordered_or_torn_lines() {
        let full = lines(2, 3);
        let missing: String = full.lines().filter(|l| !l.contains("core 1 seq 2")).map(|l| format!("{l}\n")).collect();
        assert!(whole_lines(&missing, 2).is_err());
        let torn = full.replacen("payload [0, 0]", "payload [0, 1]", 1);
        assert!(whole_lines(&torn, 2).is_err());
        assert!(whole_lines(&format!("{full}qrun: (malformed defmt frame skipped)\n"), 2).is_err());
        assert!(whole_lines("", 2).is_err());
    }
}
