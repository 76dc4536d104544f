//! The firmware as the primitives' kernel: the cold services `quiescent-platform` calls (see
//! [`quiescent_platform::Kernel`]), bound at link time.

use super::ipi::{self, Ipi};
use super::{AtomicCtx, Ctx};
use alloc::boxed::Box;
use quiescent_platform::{Kernel, Level};

struct Firmware;

impl Kernel for Firmware {
    fn wake(cpu: usize) {
        ipi::send(cpu, Ipi::Wake);
    }

    fn call_on(ctx: &mut Ctx, cpu: usize, f: Box<dyn FnOnce(&AtomicCtx) + Send>) {
        ipi::call_function_single(ctx, cpu, f);
    }

    fn report_pc(cpu: usize, timeout_ms: u64) -> Option<u64> {
        ipi::report_pc(cpu, timeout_ms)
    }

    fn log(level: Level, args: core::fmt::Arguments<'_>) {
        let mut line = Line::new();
        // A line longer than the buffer is cut, never lost.
        let _ = core::fmt::write(&mut line, args);
        let text = line.as_str();
        match level {
            Level::Info => defmt::println!("{=str}", text),
            Level::Warn => defmt::warn!("{=str}", text),
            Level::Error => defmt::error!("{=str}", text),
        }
    }
}

quiescent_platform::kernel!(Firmware);

/// A diagnostic line formatted on the stack (the log may be called in an interrupt handler or
/// with the heap lock held), cut at its capacity on a character boundary.
struct Line {
    buf: [u8; 240],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line { buf: [0; 240], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole UTF-8 strings are copied in (write_str), so the prefix is valid UTF-8.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            Err(core::fmt::Error)
        } else {
            Ok(())
        }
    }
}
