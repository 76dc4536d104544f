//! Control: the safe API used as intended compiles (so a broken harness, or a crate that fails
//! to build for another reason, cannot make every other snippet "pass").
// expect: compiles
#![no_std]
#![no_main]

extern crate alloc;

use quiescent::percpu::Percpu;
use quiescent::rcu::{self, cell::RcuCell, list::RcuList};
use quiescent::smp::{self, AtomicCtx, Ctx};
use quiescent::sync::percpu_ref::{Counted, Flags, PercpuObj, PercpuRef};
use quiescent::sync::{percpu_rwsem::PercpuRwSem, RwSemaphore};

static LIST: RcuList<u64> = RcuList::new();
static CELL: RcuCell<u64> = RcuCell::new();

struct IoCtx {
    id: u64,
}
static TABLE: RcuList<PercpuObj<IoCtx>> = RcuList::new();

/// PercpuObj's doc example: a lookup turned into a counted reference that outlives the section.
fn lookup(ctx: &Ctx, id: u64) -> Option<Counted<IoCtx>> {
    let g = rcu::read(ctx);
    TABLE.iter(&g).find(|o| o.id == id)?.tryget_live(&g)
}

quiescent::percpu! {
    static COUNT: u64 = 0;
}

fn tick(ctx: &AtomicCtx) {
    let g = rcu::read(ctx);
    let _ = LIST.iter(&g).count();
    COUNT.set(COUNT.get() + 1);
}

fn main(ctx: &mut Ctx) -> i32 {
    smp::tick::add_hook(tick);
    LIST.add_head(1);
    let first = {
        let g = rcu::read(ctx);
        LIST.iter(&g).next().copied()
    };
    rcu::rcu_quiescent_state(ctx);
    if let Some(old) = LIST.remove(|&v| v == 1) {
        old.free_after_sync(ctx);
    }
    drop(CELL.replace(7));
    let seven = {
        let g = rcu::read(ctx);
        CELL.read(&g).copied()
    };
    if let Some(old) = CELL.take() {
        old.free_after_sync(ctx);
    }
    TABLE.add_head(PercpuObj::new(IoCtx { id: 3 }).unwrap());
    if let Some(io) = lookup(ctx, 3) {
        rcu::rcu_quiescent_state(ctx);
        let _ = io.id;
        io.put(ctx);
    }
    if let Some(entry) = TABLE.remove(|o| o.id == 3) {
        entry.val().kill(ctx);
    }
    let cookie = rcu::get_state_synchronize_rcu();
    rcu::cond_synchronize_rcu(ctx, cookie);
    rcu::call_rcu(|ctx| {
        let _g = rcu::read(ctx);
    });
    rcu::rcu_barrier(ctx);
    let r = PercpuRef::init(|_| {}, Flags::NONE).unwrap();
    r.get(ctx);
    r.put(ctx);
    r.kill(ctx);
    let sem = PercpuRwSem::new().unwrap();
    let g = sem.read(ctx);
    g.unlock(ctx);
    drop(sem.write(ctx));
    let v = COUNT.with(|c| *c);
    let _ = Percpu::<u64>::local_ptr(&COUNT);
    smp::call_on(ctx, 1, |ctx| rcu::synchronize_rcu(ctx));
    (first.unwrap_or(0) + v + seven.unwrap_or(0)) as i32
}

quiescent::entry!(main);
