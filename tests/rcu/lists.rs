//! `RcuCell` and `RcuList` under concurrent readers: no reader sees a retired object freed or
//! torn, and a removed or replaced node is freed only after a grace period.

use super::LIVE;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use quiescent::arch;
use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::Ctx;
use quiescent::test::others;
use quiescent::{smp, test};

/// An object in an `RcuCell`: both halves always equal while live; poisoned when dropped, so a
/// reader that reaches a freed object (or one freed and reused) sees it.
struct Versioned {
    a: u64,
    b: u64,
    magic: u64,
    drops: Arc<AtomicUsize>,
}

impl Versioned {
    fn new(v: u64, drops: &Arc<AtomicUsize>) -> Self {
        Versioned { a: v, b: v, magic: LIVE, drops: drops.clone() }
    }
}

impl Drop for Versioned {
    fn drop(&mut self) {
        // SAFETY: fields of the object being dropped; volatile so the poison is not elided.
        unsafe { core::ptr::write_volatile(&mut self.magic, 0xdead) };
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// `RcuCell`: readers on every other core read the object (through the safe API only) while
/// core 0 replaces it, retiring each old one by dropping it (freed after a grace period), by
/// `free_after_sync`, or by a lock-free compare-and-replace. No reader may see a freed or torn
/// object, every retired object is freed exactly once, and a compare-and-replace against a
/// stale object fails and hands the new value back.
pub(super) fn rcu_cell_readers_never_see_a_retired_object_freed(ctx: &mut Ctx) {
    use quiescent::rcu::cell::RcuCell;
    let drops = Arc::new(AtomicUsize::new(0));
    let cell = Arc::new(RcuCell::with(Versioned::new(0, &drops)));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let others = others();
    let running = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    for &c in &others {
        let (cell, stop, reads, running) = (cell.clone(), stop.clone(), reads.clone(), running.clone());
        let started = started.clone();
        smp::queue_work(c, move |ctx| {
            started.fetch_add(1, Ordering::Release);
            let mut last = 0;
            while !stop.load(Ordering::Acquire) {
                {
                    let g = rcu::read(ctx);
                    let o = cell.read(&g).expect("the cell is never empty here");
                    assert_eq!(o.magic, LIVE, "a reader reached a freed object");
                    assert_eq!(o.a, o.b, "a torn object");
                    assert!(o.a >= last, "versions went backwards: {} after {}", o.a, last);
                    last = o.a;
                }
                reads.fetch_add(1, Ordering::Relaxed);
                rcu::rcu_quiescent_state(ctx);
            }
            running.fetch_add(1, Ordering::Release);
        });
    }
    test::wait_until(ctx, 5000, "the readers starting", || started.load(Ordering::Acquire) == others.len());
    const N: u64 = 300;
    for v in 1..=N {
        let old = cell.replace(Versioned::new(v, &drops)).expect("the cell held an object");
        assert_eq!(old.a, v - 1, "replace returned another object");
        if v % 16 == 0 {
            old.free_after_sync(ctx);
        } else {
            drop(old);
        }
        if v % 64 == 0 {
            rcu::rcu_quiescent_state(ctx);
        }
    }
    // Lock-free update: against the current object it succeeds, against a stale one it fails
    // and hands the new value back (which is dropped here: one more drop).
    {
        let g = rcu::read(ctx);
        let cur = cell.read(&g);
        let old = cell.compare_and_replace(cur, Versioned::new(N + 1, &drops));
        let old = old.ok().flatten().expect("compare_and_replace against the current object");
        assert_eq!(old.a, N);
        drop(old);
        // `cur` is stale now, and still readable: the guard keeps its object from being freed.
        assert_eq!(cur.map(|o| o.magic), Some(LIVE));
        match cell.compare_and_replace(cur, Versioned::new(N + 2, &drops)) {
            Err(back) => assert_eq!(back.a, N + 2, "the new value handed back"),
            Ok(_) => panic!("compare_and_replace succeeded against a stale object"),
        }
        assert_eq!(cell.read(&g).map(|o| o.a), Some(N + 1));
    }
    stop.store(true, Ordering::Release);
    test::wait_until(ctx, 10_000, "the readers stopping", || running.load(Ordering::Acquire) == others.len());
    rcu::rcu_barrier(ctx);
    // N replaced, one by compare_and_replace, one handed back: each freed exactly once.
    assert_eq!(drops.load(Ordering::Relaxed), N as usize + 2, "every retired object freed exactly once");
    let last = cell.take().expect("the cell held the last object");
    assert_eq!(last.a, N + 1);
    last.free_after_sync(ctx);
    assert!(cell.take().is_none());
    defmt::println!(
        "rcu cell: {} reads on {} cores during {} replacements",
        reads.load(Ordering::Relaxed),
        others.len(),
        N + 1
    );
}

#[derive(Debug)]
struct Item {
    key: u64,
    a: u64,
    b: u64, // always a + 1: a torn or freed item breaks this
}

pub(super) fn list_add_delete_replace_while_readers_iterate(ctx: &mut Ctx) {
    let list: Arc<RcuList<Item>> = Arc::new(RcuList::new());
    for k in 0..16 {
        list.add_head(Item { key: k, a: k, b: k + 1 });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (l2, s2) = (list.clone(), stop.clone());
    let o = others();
    let readers = Arc::new(AtomicUsize::new(o.len()));
    let seen = Arc::new(AtomicU64::new(0));
    for &c in &o {
        let (l, s, r, n) = (l2.clone(), s2.clone(), readers.clone(), seen.clone());
        smp::queue_work(c, move |ctx| {
            while !s.load(Ordering::Acquire) {
                let g = rcu::read(ctx);
                for it in l.iter(&g) {
                    assert_eq!(it.b, it.a + 1, "reader saw a torn item {:?}", it.key);
                    n.fetch_add(1, Ordering::Relaxed);
                }
                drop(g);
                rcu::rcu_quiescent_state(ctx);
            }
            r.fetch_sub(1, Ordering::Release);
        });
    }
    let freed_before = rcu::stats::callback_counts().1;
    // A third of the rounds wait for a grace period, which waits for every busy reader's next
    // quiescent state: past 8 cores (more vCPUs than the host has cores) fewer rounds, so the
    // case stays within seconds (1500 on up to 8 cores, 187 on 64).
    let rounds = 1500 * 8 / smp::num_online().max(8) as u64;
    for round in 0..rounds {
        let k = round % 16;
        match round % 3 {
            0 => {
                if let Some(r) = list.remove(|it| it.key == k) {
                    r.free_rcu();
                    list.add_head(Item { key: k, a: round, b: round + 1 });
                }
            }
            1 => {
                if let Ok(r) = list.replace(|it| it.key == k, Item { key: k, a: round * 2, b: round * 2 + 1 }) {
                    r.free_rcu();
                }
            }
            _ => {
                if let Some(r) = list.remove(|it| it.key == k) {
                    r.free_after_sync(ctx);
                    list.add_head(Item { key: k, a: 7, b: 8 });
                }
            }
        }
        if round % 64 == 0 {
            rcu::rcu_quiescent_state(ctx);
        }
    }
    stop.store(true, Ordering::Release);
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "readers did not stop");
        readers.load(Ordering::Acquire) != 0
    });
    rcu::rcu_barrier(ctx);
    assert_eq!(list.len(), 16);
    assert!(rcu::stats::callback_counts().1 > freed_before, "no node was freed through call_rcu");
    if !o.is_empty() {
        assert!(seen.load(Ordering::Relaxed) > 0, "readers never saw an item");
    }
}

/// Review hazard 2: `let _ = list.remove(..)` must not free the node under a reader.
pub(super) fn dropping_a_removed_node_frees_it_after_a_grace_period(ctx: &mut Ctx) {
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    struct Counted(u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::Release);
        }
    }
    let list = RcuList::new();
    list.add_head(Counted(2));
    list.add_head(Counted(1));
    let before = DROPPED.load(Ordering::Acquire);
    {
        let g = rcu::read(ctx);
        let mut it = list.iter(&g);
        assert_eq!(it.next().map(|c| c.0), Some(1));
        // The updater drops what remove returns at once (on the reader's own core here: in QSBR
        // this core is a reader until its next quiescent point).
        let _ = list.remove(|c| c.0 == 2);
        // The reader steps onto the removed node: still there (debug builds check its magic).
        assert_eq!(it.next().map(|c| c.0), Some(2), "the reader lost the removed node");
        assert_eq!(DROPPED.load(Ordering::Acquire), before, "dropping a removed node freed it at once");
    }
    rcu::rcu_barrier(ctx);
    assert_eq!(DROPPED.load(Ordering::Acquire), before + 1, "the removed node was never freed");
    let _ = list.replace(|c| c.0 == 1, Counted(3));
    assert_eq!(DROPPED.load(Ordering::Acquire), before + 1, "dropping a replaced node freed it at once");
    rcu::rcu_barrier(ctx);
    assert_eq!(DROPPED.load(Ordering::Acquire), before + 2, "the replaced node was never freed");
}
