//! The line protocol between an on-target test image and the host.
//!
//! Lines starting with `@` are markers for the host and are not shown (unless `--verbose`):
//!
//! | line                      | meaning                                                   |
//! |---------------------------|-----------------------------------------------------------|
//! | `@case boot::every_core`  | the image is about to run this case                       |
//! | `@cores 1-3,5`            | the case handed work to these cores (ranges)              |
//! | `@done 2`                 | core 2 finished the work it was handed                    |
//! | `@summary boot 5 0`       | the image ran all its cases: passed, failed               |
//!
//! Everything else is shown. `test <bin>::<case> ... ok` and `... FAILED: <reason>` are results;
//! `<bin>::<case>: test` lists a case (libtest's `--list` format).
//!
//! The host selects cases on the image's kernel command line (see [`Selection`]).

/// One decoded line, classified.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `@case`: the case about to run.
    CaseStart(&'a str),
    /// `@cores`: the cores the running case handed work to.
    CoresBusy(Vec<u32>),
    /// `@done`: a core finished its work.
    CoreDone(u32),
    /// `test <name> ... ok` or `... FAILED: <reason>`.
    Result { name: &'a str, ok: bool, reason: &'a str },
    /// `@summary`: every selected case ran.
    Summary { bin: &'a str, passed: u32, failed: u32 },
    /// `<bin>::<case>: test`: a case, listed (`test-list=1`).
    Listed(&'a str),
    /// Anything else: shown as it is.
    Text(&'a str),
}

/// Classifies one decoded line; anything malformed is plain text.
pub fn classify(line: &str) -> Line<'_> {
    if let Some(rest) = line.strip_prefix('@') {
        let mut words = rest.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("case"), Some(name), None, None) => return Line::CaseStart(name),
            (Some("cores"), Some(list), None, None) => {
                if let Some(v) = parse_ranges(list) {
                    return Line::CoresBusy(v);
                }
            }
            (Some("done"), Some(core), None, None) => {
                if let Ok(c) = core.parse() {
                    return Line::CoreDone(c);
                }
            }
            (Some("summary"), Some(bin), Some(p), Some(f)) => {
                if let (Ok(passed), Ok(failed)) = (p.parse(), f.parse()) {
                    return Line::Summary { bin, passed, failed };
                }
            }
            _ => {}
        }
        return Line::Text(line);
    }
    if let Some(rest) = line.strip_prefix("test ") {
        if let Some((name, outcome)) = rest.split_once(" ... ") {
            if outcome == "ok" {
                return Line::Result { name, ok: true, reason: "" };
            }
            if let Some(reason) = outcome.strip_prefix("FAILED") {
                let reason = reason.trim_start_matches(':').trim();
                return Line::Result { name, ok: false, reason };
            }
        }
    }
    if let Some(name) = line.strip_suffix(": test") {
        if name.contains("::") && !name.contains(char::is_whitespace) {
            return Line::Listed(name);
        }
    }
    Line::Text(line)
}

/// Which of an image's cases run, as libtest's arguments choose them (`cargo test -- NAME`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Run the cases whose full name (`<bin>::<case>`) contains one of these (all if empty).
    pub filters: Vec<String>,
    /// A filter must equal the full name (`--exact`).
    pub exact: bool,
    /// List the selected cases instead of running them (`--list`).
    pub list: bool,
}

impl Selection {
    /// Whether case (or host check) `name` is selected; the image's `run_tests` decides the same
    /// way for its own cases.
    pub fn matches(&self, name: &str) -> bool {
        self.filters.is_empty()
            || self.filters.iter().any(|f| if self.exact { name == f } else { name.contains(f.as_str()) })
    }

    /// Whether any filter is given.
    pub fn is_filtered(&self) -> bool {
        !self.filters.is_empty()
    }

    /// `append` (a kernel command line) with the image's selection arguments added:
    /// `test-filter=A,B`, `test-exact=1`, `test-list=1`.
    pub fn boot_args(&self, append: &str) -> String {
        let mut args: Vec<String> = append.split_whitespace().map(str::to_string).collect();
        if self.is_filtered() {
            args.push(format!("test-filter={}", self.filters.join(",")));
            if self.exact {
                args.push("test-exact=1".into());
            }
        }
        if self.list {
            args.push("test-list=1".into());
        }
        args.join(" ")
    }
}

/// Parses `1-3,5` into `[1, 2, 3, 5]`; None if malformed.
fn parse_ranges(list: &str) -> Option<Vec<u32>> {
    let mut v = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                v.extend(a..=b);
            }
            None => v.push(part.parse().ok()?),
        }
    }
    Some(v)
}

/// Formats a set of cores as `1, 3` (runs of three or more as `4-63`).
pub fn cores_of(cores: &std::collections::BTreeSet<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let v: Vec<u32> = cores.iter().copied().collect();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}-{}", v[i], v[j]));
        } else {
            parts.extend(v[i..=j].iter().map(|c| c.to_string()));
        }
        i = j + 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_classified() {
        assert_eq!(classify("@case boot::every_core_online"), Line::CaseStart("boot::every_core_online"));
        assert_eq!(classify("@cores 1-3"), Line::CoresBusy(vec![1, 2, 3]));
        assert_eq!(classify("@cores 0,2-3,511"), Line::CoresBusy(vec![0, 2, 3, 511]));
        assert_eq!(classify("@done 3"), Line::CoreDone(3));
        assert_eq!(classify("@summary boot 5 1"), Line::Summary { bin: "boot", passed: 5, failed: 1 });
    }

    #[test]
    fn results_are_classified() {
        assert_eq!(classify("test a::b ... ok"), Line::Result { name: "a::b", ok: true, reason: "" });
        assert_eq!(
            classify("test a::b ... FAILED: x != y at tests/a.rs:3"),
            Line::Result { name: "a::b", ok: false, reason: "x != y at tests/a.rs:3" }
        );
    }

    #[test]
    fn malformed_lines_are_text() {
        assert_eq!(classify("@cores zz"), Line::Text("@cores zz"));
        assert_eq!(classify("@summary boot x 0"), Line::Text("@summary boot x 0"));
        assert_eq!(classify("test without outcome"), Line::Text("test without outcome"));
        assert_eq!(classify("cores online: 4/4"), Line::Text("cores online: 4/4"));
        assert_eq!(classify("note: test"), Line::Text("note: test"));
        assert_eq!(classify("two words::x: test"), Line::Text("two words::x: test"));
    }

    #[test]
    fn listed_cases_are_classified() {
        assert_eq!(classify("rcu::grace_period_completes: test"), Line::Listed("rcu::grace_period_completes"));
    }

    #[test]
    fn selection_matches_like_libtest() {
        let all = Selection::default();
        assert!(all.matches("rcu::anything"));
        let sel = Selection { filters: vec!["grace".into(), "barrier".into()], ..Selection::default() };
        assert!(sel.matches("rcu::grace_period_completes"));
        assert!(sel.matches("rcu::rcu_barrier_waits"));
        assert!(!sel.matches("rcu::stall_is_reported"));
        let exact = Selection { filters: vec!["rcu::a".into()], exact: true, list: false };
        assert!(exact.matches("rcu::a"));
        assert!(!exact.matches("rcu::ab"));
    }

    #[test]
    fn selection_goes_on_the_command_line() {
        assert_eq!(Selection::default().boot_args("maxcpus=2"), "maxcpus=2");
        let sel = Selection { filters: vec!["a".into(), "b".into()], exact: true, list: true };
        assert_eq!(sel.boot_args(""), "test-filter=a,b test-exact=1 test-list=1");
        let sel = Selection { filters: vec!["grace".into()], ..Selection::default() };
        assert_eq!(sel.boot_args("misuse=x"), "misuse=x test-filter=grace");
    }

    #[test]
    fn core_masks_are_listed() {
        assert_eq!(cores_of(&[1, 3].into()), "1, 3");
        assert_eq!(cores_of(&[1, 2, 4, 5, 6, 7, 300].into()), "1, 2, 4-7, 300");
        assert_eq!(cores_of(&Default::default()), "none");
    }
}
