//! Control: the crates' doc examples (quiescent-rcu's `RcuCell` and `kfree_rcu`,
//! quiescent-sync's `PercpuObj`), as written there, compile against the crates themselves (their
//! doctests cannot run: the crates build for aarch64-unknown-none). Keep in step with the docs.
// expect: compiles
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;

mod cell_example {
    use quiescent_platform::Ctx;
    use quiescent_rcu::{self as rcu, cell::RcuCell};

    struct Config {
        blocksize: u32,
    }
    static CONFIG: RcuCell<Config> = RcuCell::new();

    pub fn reader(ctx: &Ctx) -> u32 {
        let g = rcu::read(ctx);
        CONFIG.read(&g).map_or(512, |c| c.blocksize) // one load; the &Config borrows the guard
    }

    pub fn update(ctx: &mut Ctx, blocksize: u32) {
        // The old object goes to RCU: dropped, it is freed after a grace period...
        drop(CONFIG.replace(Config { blocksize }));
        // ...or `free_after_sync(ctx)` waits for the grace period here instead.
        if let Some(old) = CONFIG.replace(Config { blocksize: blocksize * 2 }) {
            old.free_after_sync(ctx);
        }
    }
}

mod percpu_obj_example {
    use quiescent_platform::Ctx;
    use quiescent_rcu::{self as rcu, list::RcuList};
    use quiescent_sync::percpu_ref::{Counted, PercpuObj};

    pub struct IoCtx {
        id: u64,
    }
    static TABLE: RcuList<PercpuObj<IoCtx>> = RcuList::new();

    // A request: find the context under RCU, keep it with a counted reference.
    fn lookup(ctx: &Ctx, id: u64) -> Option<Counted<IoCtx>> {
        let g = rcu::read(ctx);
        TABLE.iter(&g).find(|o| o.id == id)?.tryget_live(&g)
    }

    pub fn request(ctx: &mut Ctx, id: u64) {
        let Some(io) = lookup(ctx, id) else { return };
        rcu::rcu_quiescent_state(ctx); // the reference, not RCU, keeps it alive here
        let _ = io.id;
        io.put(ctx); // or drop it
    }

    pub fn destroy(ctx: &Ctx, id: u64) {
        if let Some(entry) = TABLE.remove(|o| o.id == id) {
            entry.val().kill(ctx); // tryget_live fails from now on; freed after the last put
        }
    }
}

mod kfree_rcu_example {
    use super::Box;
    use quiescent_rcu::{kfree_rcu, RcuHead, RcuHeaded};

    pub struct Route {
        pub dst: u32,
        pub head: RcuHead,
    }
    // SAFETY: HEAD_OFFSET is the offset of `head`, which nothing else uses.
    unsafe impl RcuHeaded for Route {
        const HEAD_OFFSET: usize = core::mem::offset_of!(Route, head);
    }

    pub fn retire(old: Box<Route>) {
        kfree_rcu(old); // no allocation; dropped a grace period from now
    }
}

fn main(ctx: &mut quiescent::smp::Ctx) -> i32 {
    let n = cell_example::reader(ctx);
    cell_example::update(ctx, n);
    percpu_obj_example::request(ctx, 1);
    percpu_obj_example::destroy(ctx, 1);
    kfree_rcu_example::retire(Box::new(kfree_rcu_example::Route { dst: 1, head: quiescent_rcu::RcuHead::new() }));
    0
}

quiescent::entry!(main);
