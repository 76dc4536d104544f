//! Expected-failure image: triggers the fault named by the kernel command line (`fault=<kind>`)
//! and must be reported and exit non-zero. The suite runs it once per kind and checks the text.
//!
//! kinds: `unmapped` (data abort), `undefined` (undefined instruction), `write-text` (write to
//! code: permission fault), `exec-data` (execute data: permission fault), `stack-overflow`
//! (on core 1 when present: runs into its guard page), `irq-stack-overflow` (an interrupt handler
//! on core 1 that overflows the exception stack: safe code in a `call_function_single` closure
//! must run into that stack's own guard page, not overwrite the stack of the code it
//! interrupted), `percpu-no-area` (another core's per-cpu copy, for a core that has no area).
#![no_std]
#![no_main]

use core::hint::black_box;
use quiescent::smp::{self, Ctx};
use quiescent::{board, test};

/// A word of data that happens to hold a `ret` instruction.
static NOT_CODE: [u32; 1] = [0xd65f03c0];

#[inline(never)]
#[expect(unconditional_recursion, reason = "the stack overflow is the point")]
fn recurse(n: u64) -> u64 {
    let buf = [n; 32];
    black_box(&buf);
    recurse(n + 1).wrapping_add(buf[3])
}

fn trigger(ctx: &mut Ctx) {
    let kind = board::bootarg("fault").expect("the fault image needs fault=<kind> on the command line");
    match kind {
        "unmapped" => {
            // SAFETY: deliberately unsound: this address is not mapped; the fault is the test.
            let v = unsafe { core::ptr::read_volatile(0x20_0000_0000 as *const u64) };
            black_box(v);
        }
        // SAFETY: deliberately executes an undefined instruction; the fault is the test.
        "undefined" => unsafe { core::arch::asm!("udf #0") },
        "write-text" => {
            let code = trigger as *const () as *mut u32;
            // SAFETY: deliberately writes to read-only code; the fault is the test.
            unsafe { core::ptr::write_volatile(code, 0) };
        }
        "exec-data" => {
            // SAFETY: deliberately jumps into execute-never data; the fault is the test.
            let f: extern "C" fn() = unsafe { core::mem::transmute(NOT_CODE.as_ptr()) };
            f();
        }
        "stack-overflow" => {
            let target = if smp::num_online() > 1 { 1 } else { 0 };
            test::on_all_cores(ctx, move |cpu, _| {
                if cpu == target {
                    black_box(recurse(0));
                }
            });
        }
        "irq-stack-overflow" => {
            let target = if smp::num_online() > 1 { 1 } else { 0 };
            smp::ipi::call_function_single(ctx, target, |_| black_box(recurse(0)));
        }
        "percpu-no-area" => {
            let v = quiescent::percpu::offset(black_box(smp::num_possible()));
            black_box(v);
        }
        other => panic!("unknown fault kind `{}`", other),
    }
    panic!("fault `{}` did not fault", kind);
}

quiescent::tests!(trigger);
