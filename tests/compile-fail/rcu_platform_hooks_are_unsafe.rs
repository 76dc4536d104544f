//! RCU's platform hooks change whether grace periods wait for this core: calling one from safe
//! code (here: declaring this core idle while it reads) is refused.
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::Ctx;

static LIST: RcuList<u64> = RcuList::new();

fn main(ctx: &mut Ctx) -> i32 {
    let g = rcu::read(ctx);
    rcu::platform::cpu_dead();
    LIST.iter(&g).count() as i32
}

quiescent::entry!(main);
