//! Turning the bytes an image sends into lines: defmt frames (decoded with the ELF's table) or,
//! for an image without one, plain text. `qrun run` and `qrun decode` share this, so a board's
//! console reads exactly like a QEMU run.

use defmt_decoder::{DecodeError, Frame, StreamDecoder, Table};
use std::io::{Read, Write};
use std::path::Path;

/// What replaces a frame the decoder could not make sense of.
pub const MALFORMED: &str = "qrun: (malformed defmt frame skipped)";

/// The one frame formatter: `[<timestamp> <LEVEL>] message` for a log frame, `[<LEVEL>] message`
/// without a timestamp, and the bare message for `println!` frames (so host checks see the
/// image's lines exactly as it wrote them). A message with newlines gives several lines; only
/// the first carries the prefix.
pub fn format_lines(level: Option<&str>, timestamp: Option<&str>, message: &str) -> Vec<String> {
    let text = match (level, timestamp) {
        (Some(level), Some(ts)) => format!("[{ts} {}] {message}", level.to_uppercase()),
        (Some(level), None) => format!("[{}] {message}", level.to_uppercase()),
        (None, _) => message.to_string(),
    };
    text.lines().map(str::to_string).collect()
}

/// [`format_lines`] for a decoded frame.
fn frame_lines(frame: &Frame<'_>) -> Vec<String> {
    let timestamp = frame.display_timestamp().map(|t| t.to_string());
    format_lines(frame.level().map(|l| l.as_str()), timestamp.as_deref(), &frame.display_message().to_string())
}

/// Splits a byte stream into lines, decoding defmt if the image has a table.
pub enum Lines<'t> {
    /// The image logs with defmt.
    Defmt(Box<dyn StreamDecoder + Send + Sync + 't>),
    /// The image prints text; the bytes of the unfinished line so far.
    Text(Vec<u8>),
}

impl<'t> Lines<'t> {
    /// A decoder for an image with `table` (`None`: it prints plain text).
    pub fn new(table: Option<&'t Table>) -> Self {
        match table {
            Some(t) => Lines::Defmt(t.new_stream_decoder()),
            None => Lines::Text(Vec::new()),
        }
    }

    /// Takes the next bytes of the stream and returns the lines they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        match self {
            Lines::Defmt(d) => {
                d.received(bytes);
                loop {
                    match d.decode() {
                        Ok(frame) => lines.extend(frame_lines(&frame)),
                        Err(DecodeError::UnexpectedEof) => break,
                        Err(DecodeError::Malformed) => lines.push(MALFORMED.into()),
                    }
                }
            }
            Lines::Text(partial) => {
                for &b in bytes {
                    if b == b'\n' {
                        lines.push(String::from_utf8_lossy(partial).trim_end().to_string());
                        partial.clear();
                    } else {
                        partial.push(b);
                    }
                }
            }
        }
        lines
    }
}

/// Reads `elf`'s defmt table (`None` if it has none).
pub fn read_table(elf: &Path) -> Result<Option<Table>, String> {
    let bytes = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    Table::parse(&bytes).map_err(|e| format!("bad defmt data in {}: {e}", elf.display()))
}

/// Decodes the defmt stream on stdin with `elf`'s table and prints one line per frame until EOF.
pub fn decode_stdin(elf: &Path, out: &mut dyn Write) -> Result<(), String> {
    let table = read_table(elf)?.ok_or_else(|| format!("{} has no defmt table", elf.display()))?;
    let mut lines = Lines::new(Some(&table));
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    loop {
        let n = stdin.read(&mut buf).map_err(|e| format!("reading stdin: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        for line in lines.feed(&buf[..n]) {
            let _ = writeln!(out, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{format_lines, Lines};

    #[test]
    fn log_frames_carry_timestamp_and_level() {
        assert_eq!(
            format_lines(Some("info"), Some("1234 c0"), "cores online: 4/4"),
            ["[1234 c0 INFO] cores online: 4/4"]
        );
        assert_eq!(format_lines(Some("warn"), None, "no timestamp"), ["[WARN] no timestamp"]);
    }

    #[test]
    fn println_frames_are_bare() {
        // The suite's markers and checks read these lines as the image wrote them.
        assert_eq!(format_lines(None, Some("1234 c0"), "@case boot::x"), ["@case boot::x"]);
        assert_eq!(format_lines(None, None, "test a::b ... ok"), ["test a::b ... ok"]);
    }

    #[test]
    fn multi_line_messages_become_lines() {
        assert_eq!(format_lines(Some("error"), Some("7 c1"), "first\nsecond"), ["[7 c1 ERROR] first", "second"]);
    }

    #[test]
    fn text_images_are_split_at_newlines() {
        let mut lines = Lines::new(None);
        assert_eq!(lines.feed(b"hello wor"), Vec::<String>::new());
        assert_eq!(lines.feed(b"ld\r\nsecond\nthi"), ["hello world", "second"]);
        assert_eq!(lines.feed(b"rd\n"), ["third"]);
    }
}
