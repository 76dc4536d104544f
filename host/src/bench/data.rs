//! The bench image's machine-readable lines, parsed: `BENCH <kind> mode=<mode> key=value ...`,
//! where a value with spaces is quoted (`label="..."`).

use std::collections::BTreeMap;

/// One `BENCH` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    /// What it reports: `cost`, `scale`, `update`, `mixed`, `gain`, `target`, `info`, `done`.
    pub kind: String,
    /// Its fields (`mode` among them).
    pub fields: BTreeMap<String, String>,
}

impl Rec {
    /// A field's text.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// A field as a number.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok()
    }

    /// A field's text, or "" when absent.
    pub fn s(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// Whether a yes/no field says yes.
    pub fn yes(&self, key: &str) -> bool {
        self.get(key) == Some("yes")
    }
}

/// Parses one line; `None` unless it is a `BENCH` line.
pub fn parse_line(line: &str) -> Option<Rec> {
    let rest = line.trim_end().strip_prefix("BENCH ")?;
    let (kind, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut fields = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            after.split_once(' ').unwrap_or((after, ""))
        };
        fields.insert(key.to_string(), value.to_string());
        rest = after;
    }
    Some(Rec { kind: kind.to_string(), fields })
}

/// Every `BENCH` line of a run's text.
pub fn parse_all(text: &str) -> Vec<Rec> {
    text.lines().filter_map(parse_line).collect()
}

/// The records of both runs, with look-ups by kind and mode.
#[derive(Debug, Default)]
pub struct Data {
    /// All records, icount run first.
    pub recs: Vec<Rec>,
}

impl Data {
    /// Records of `kind` in `mode` (any mode when `mode` is empty).
    pub fn of<'a>(&'a self, kind: &str, mode: &str) -> impl Iterator<Item = &'a Rec> + 'a {
        let (kind, mode) = (kind.to_string(), mode.to_string());
        self.recs.iter().filter(move |r| r.kind == kind && (mode.is_empty() || r.s("mode") == mode))
    }

    /// The first record of `kind` in `mode` whose field `key` is `value`.
    pub fn find(&self, kind: &str, mode: &str, key: &str, value: &str) -> Option<&Rec> {
        self.of(kind, mode).find(|r| r.get(key) == Some(value))
    }

    /// Distinct values of `key` among records of `kind`, in first-seen order.
    pub fn distinct(&self, kind: &str, key: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.of(kind, "") {
            if let Some(v) = r.get(key) {
                if !out.iter().any(|o| o == v) {
                    out.push(v.to_string());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_line, Data};

    #[test]
    fn lines_with_quoted_labels_parse() {
        let r = parse_line("BENCH cost mode=icount op=percpu_ref value=10.00 unit=insn label=\"percpu_ref get + put\"")
            .expect("a BENCH line");
        assert_eq!(r.kind, "cost");
        assert_eq!(r.s("mode"), "icount");
        assert_eq!(r.num("value"), Some(10.0));
        assert_eq!(r.s("label"), "percpu_ref get + put");
        assert!(parse_line("bench: 4 cores").is_none());
        let done = parse_line("BENCH done mode=mttcg ").expect("a BENCH line");
        assert_eq!((done.kind.as_str(), done.fields.len()), ("done", 1));
    }

    #[test]
    fn look_ups_by_kind_mode_and_field() {
        let d = Data {
            recs: super::parse_all(
                "x\nBENCH scale mode=mttcg op=rcu cores=1 ops_per_s=5\nBENCH scale mode=mttcg op=rcu cores=2 ops_per_s=10\nBENCH scale mode=mttcg op=rwsem cores=1 ops_per_s=3\n",
            ),
        };
        assert_eq!(d.of("scale", "mttcg").count(), 3);
        assert_eq!(d.of("scale", "icount").count(), 0);
        assert_eq!(d.distinct("scale", "op"), ["rcu", "rwsem"]);
        assert_eq!(d.find("scale", "mttcg", "op", "rwsem").and_then(|r| r.num("ops_per_s")), Some(3.0));
    }
}
