//! RCU's interrupt exit hook puts a core that was idle back into its extended quiescent state:
//! called outside the interrupt entry it could end RCU's watch over code still reading. Reaching
//! it is the kernel's interrupt entry's business, and `unsafe`.
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::smp::Ctx;

fn main(_ctx: &mut Ctx) -> i32 {
    if let Some((_, exit)) = quiescent_platform::irq_context_hooks() {
        exit(true);
    }
    0
}

quiescent::entry!(main);
