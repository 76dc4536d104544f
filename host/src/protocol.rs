//! The line protocol between an on-target test image and the host.
//!
//! Lines starting with `@` are markers for the host and are not shown (unless `--verbose`):
//!
//! | line                      | meaning                                                   |
//! |---------------------------|-----------------------------------------------------------|
//! | `@case boot::every_core`  | the image is about to run this case                       |
//! | `@cores 0xe`              | the case handed work to these cores (bit mask)            |
//! | `@done 2`                 | core 2 finished the work it was handed                    |
//! | `@summary boot 5 0`       | the image ran all its cases: passed, failed               |
//!
//! Everything else is shown. `test <bin>::<case> ... ok` and `... FAILED: <reason>` are results.

/// One decoded line, classified.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    CaseStart(&'a str),
    CoresBusy(u64),
    CoreDone(u32),
    Result { name: &'a str, ok: bool, reason: &'a str },
    Summary { bin: &'a str, passed: u32, failed: u32 },
    Text(&'a str),
}

/// Classifies one decoded line; anything malformed is plain text.
pub fn classify(line: &str) -> Line<'_> {
    if let Some(rest) = line.strip_prefix('@') {
        let mut words = rest.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("case"), Some(name), None, None) => return Line::CaseStart(name),
            (Some("cores"), Some(mask), None, None) => {
                if let Ok(m) = u64::from_str_radix(mask.trim_start_matches("0x"), 16) {
                    return Line::CoresBusy(m);
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
    Line::Text(line)
}

/// Formats a core mask as `1, 3`.
pub fn cores_of(mask: u64) -> String {
    let v: Vec<String> = (0..64).filter(|c| mask & (1 << c) != 0).map(|c| c.to_string()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_classified() {
        assert_eq!(classify("@case boot::every_core_online"), Line::CaseStart("boot::every_core_online"));
        assert_eq!(classify("@cores 0xe"), Line::CoresBusy(0xe));
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
    }

    #[test]
    fn core_masks_are_listed() {
        assert_eq!(cores_of(0b1010), "1, 3");
        assert_eq!(cores_of(0), "none");
    }
}
