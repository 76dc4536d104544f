//! The suite's checks: host-side checks of an image's output, and matching a run's result
//! against its expectation.

use super::table::{Build, Expect, Run};
use crate::board::Board;
use crate::qemu::{RunResult, EXIT_TIMEOUT};

/// The firmware's exit code for a boot its board refused (`board::EXIT_BOOT_CHECK`).
pub const EXIT_BOOT_CHECK: i32 = 103;

/// Counts of one or more runs.
#[derive(Default)]
pub struct Tally {
    /// Cases and checks that passed.
    pub passed: u32,
    /// Cases and checks that failed.
    pub failed: u32,
    /// What failed, with the run's label.
    pub failures: Vec<String>,
}

impl Tally {
    /// Adds another tally's counts and failures.
    pub fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.failures.extend(other.failures);
    }
}

/// Checks what run `r` (labelled `label`) on `b` produced against its expectation, printing a
/// `test ... ok` or `... FAILED` line for each verdict. `run_check` is false when a filter left
/// out a `PassAnd` run's host check.
pub fn judge(r: &Run, res: &RunResult, b: Board, label: &str, run_check: bool, t: &mut Tally) {
    match r.expect {
        Expect::Pass | Expect::PassAnd(..) => {
            t.passed += res.passed;
            t.failed += res.failed;
            for f in &res.failures {
                t.failures.push(format!("{label}: {f}"));
            }
            if res.failed == 0 && (res.summary.is_none() || res.exit_code != 0) {
                println!(
                    "test {}::summary ... FAILED: image ended without its summary (exit {})",
                    r.bin, res.exit_code
                );
                t.failures.push(format!("{label}: no summary"));
                t.failed += 1;
            }
            if let (Expect::PassAnd(name, check), true) = (&r.expect, run_check) {
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
                let why = if res.text.contains("End of test: FAILURE") {
                    "End of test: FAILURE".to_string()
                } else {
                    format!("no verdict (exit {})", res.exit_code)
                };
                println!("test {name} ... FAILED: {why}");
                t.failures.push(format!("{label}: {why}"));
                t.failed += 1;
            }
        }
        Expect::TortureCatches(reports) => {
            let name = format!("torture::{}", torture_case(r, b));
            let seen = reports.iter().find(|rep| res.text.contains(*rep));
            if res.exit_code != 0
                && res.exit_code != EXIT_TIMEOUT
                && res.text.contains("End of test: FAILURE")
                && seen.is_some()
            {
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
            if res.exit_code == EXIT_TIMEOUT && res.text.contains(text) {
                println!("test {}::runner_names_the_hang ... ok (killed, report matched)", r.bin);
                t.passed += 1;
            } else {
                println!(
                    "test {}::runner_names_the_hang ... FAILED: wanted a timeout naming `{text}`, got exit {}",
                    r.bin, res.exit_code
                );
                t.failures.push(format!("{label}: expected timeout not seen"));
                t.failed += 1;
            }
        }
        Expect::Refused(text) => {
            let name = format!("{}::boot_refused{}", r.bin, suffix(if r.el1 { "entered at EL1" } else { r.append }));
            if res.exit_code == EXIT_BOOT_CHECK && res.text.contains(text) {
                println!("test {name} ... ok (exit {EXIT_BOOT_CHECK}, named: {text})");
                t.passed += 1;
            } else {
                println!(
                    "test {name} ... FAILED: wanted exit {EXIT_BOOT_CHECK} (the board's boot check) and `{text}`, got exit {}",
                    res.exit_code
                );
                t.failures.push(format!("{label}: boot check not seen"));
                t.failed += 1;
            }
        }
        Expect::Fail(text) => {
            let ok = res.exit_code != 0 && res.exit_code != EXIT_TIMEOUT && res.text.contains(text);
            if ok {
                println!(
                    "test {}::expected_failure{} ... ok (exit {}, report matched)",
                    r.bin,
                    suffix(r.append),
                    res.exit_code
                );
                t.passed += 1;
            } else {
                println!(
                    "test {}::expected_failure{} ... FAILED: wanted a non-zero exit and `{text}`, got exit {}",
                    r.bin,
                    suffix(r.append),
                    res.exit_code
                );
                t.failures.push(format!("{label}: expected failure not seen"));
                t.failed += 1;
            }
        }
    }
}

/// The case name of a torture run: its build and board (`release_on_virt`,
/// `catches_inject_gp_skip_core`, ...).
fn torture_case(r: &Run, board: Board) -> String {
    match r.build {
        Build::Inject(bug) => format!("catches_inject_{}", bug.replace('-', "_")),
        Build::Debug => format!("debug_build_on_{board}_{}_cores_succeeds", r.smp),
        _ => format!("release_build_on_{board}_{}_cores_succeeds", r.smp),
    }
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
pub fn beyond_limit(text: &str, _cores: u32) -> Result<(), String> {
    for c in 2..4 {
        let want = format!("core {c} (MPIDR {c:#x}) is beyond the limit of 2 cores");
        if !text.contains(&want) {
            return Err(format!("no `{want}` report"));
        }
    }
    Ok(())
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
