//! Barriers, and the negative controls that leave one out: a labelled barrier or ordering
//! ([`omit_barrier`]), or a labelled grace period ([`omit_grace_period`]).

use super::irq::{take_irq, IrqAt};
use super::Ordering;
use core::cell::Cell;
use core::panic::Location;
use loom::sync::atomic::fence;

std::thread_local! {
    // (file, label) of the barrier left out; loom runs all its threads on the test's own thread.
    static OMITTED: Cell<Option<(&'static str, &'static str)>> = const { Cell::new(None) };
    // Whether a run reached the barrier or grace period left out (a label nothing carries would
    // leave nothing out, and a control expecting no failure would pass for nothing).
    static OMITTED_REACHED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the barrier or grace period left out ([`omit_barrier`], [`omit_grace_period`]) was
/// reached since.
pub fn omitted_reached() -> bool {
    OMITTED_REACHED.with(|r| r.get())
}

/// Leaves the barrier labelled `label` in `file` (a path suffix, `crates/rcu/src/qs.rs`) out of
/// the model runs on this thread until [`restore_barriers`]: an [`smp_mb!`](crate::smp_mb!) with
/// that label skips its fence, an access whose [`ordering!`](crate::ordering!) carries it becomes
/// Relaxed. A label names one site per file (`"A@rcu_qs"` where a letter recurs).
pub fn omit_barrier(file: &'static str, label: &'static str) {
    OMITTED.with(|o| o.set(Some((file, label))));
    OMITTED_REACHED.with(|r| r.set(false));
}

/// Puts every barrier back.
pub fn restore_barriers() {
    OMITTED.with(|o| o.set(None));
    restore_grace_periods();
}

fn omitted(at: &Location<'_>, label: &str) -> bool {
    let hit = OMITTED.with(|o| matches!(o.get(), Some((f, l)) if l == label && at.file().ends_with(f)));
    if hit {
        OMITTED_REACHED.with(|r| r.set(true));
    }
    hit
}

crate::global! {
    // Written (Relaxed) by every full barrier and never read: see smp_mb.
    static BARRIER_POINT: loom::sync::atomic::AtomicUsize = loom::sync::atomic::AtomicUsize::new(0);
}

/// `dmb ish`, modelled as a SeqCst fence. A raised interrupt ([`raise_irq`]) is taken here.
///
/// loom switches threads only at its own operations, and only where its exploration finds
/// accesses that conflict; a fence is no such operation. A fence right after a store would
/// then run together with it, so no other core could ever see the store before the fence, and
/// a missing barrier just before the store would be hidden by the one just after it (loom makes
/// a SeqCst fence synchronise with every SeqCst fence it ran earlier). So every full barrier
/// first stores to one shared word, a point where another core may run, and an access that
/// conflicts with every other core's barriers, so loom also runs two cores' barriers in both
/// orders. Nothing reads the word: a store alone synchronises with nothing (a read-modify-write
/// would, through the fences before it: C11's fence-to-fence synchronisation). A barrier a
/// negative control leaves out leaves out its point too, as the firmware without it has none.
pub fn smp_mb() {
    smp_mb_at(None);
}

/// [`smp_mb!`](crate::smp_mb!): a full barrier a negative control may leave out by its label.
#[track_caller]
pub fn smp_mb_labelled(label: &'static str) {
    smp_mb_at(Some((Location::caller(), label)));
}

fn smp_mb_at(labelled: Option<(&Location<'_>, &str)>) {
    take_irq(IrqAt::BeforeBarrier);
    if !labelled.is_some_and(|(at, l)| omitted(at, l)) {
        BARRIER_POINT.store(0, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }
    take_irq(IrqAt::AfterBarrier);
}

/// `dmb ishld`, modelled as an Acquire fence.
pub fn smp_rmb() {
    fence(Ordering::Acquire);
}

/// `dmb ishst`, modelled as a Release fence (stronger than the hardware: see the module docs).
pub fn smp_wmb() {
    fence(Ordering::Release);
}

/// [`ordering!`](crate::ordering!): `o`, or Relaxed if a negative control left this label out.
#[track_caller]
pub fn labelled_ordering(o: Ordering, label: &'static str) -> Ordering {
    if omitted(Location::caller(), label) {
        Ordering::Relaxed
    } else {
        o
    }
}

// Leaving out a grace period (percpu_ref's and rcu_sync's G).

std::thread_local! {
    // (file, label) of the grace period left out, and the label of the next `call_rcu` or
    // `synchronize_rcu` on this thread ([`label_grace_period`]).
    static NO_GRACE_PERIOD: Cell<Option<(&'static str, &'static str)>> = const { Cell::new(None) };
}

loom::thread_local! {
    static NEXT_GP_LABEL: Cell<Option<(&'static Location<'static>, &'static str)>> = Cell::new(None);
}

/// Leaves out the grace period of the `call_rcu` or `synchronize_rcu` labelled `label` in `file`
/// ([`grace_period!`](crate::grace_period!)) in the model runs on this thread until
/// [`restore_barriers`]: the RCU stand-in queues that callback to run without one (percpu_ref's
/// G: the firmware's `ref-fold-no-gp` fault, per run), or returns at once (rcu_sync's G).
pub fn omit_grace_period(file: &'static str, label: &'static str) {
    NO_GRACE_PERIOD.with(|o| o.set(Some((file, label))));
    OMITTED_REACHED.with(|r| r.set(false));
}

/// [`grace_period!`](crate::grace_period!): labels the next grace period this core asks for.
#[track_caller]
pub fn label_grace_period(label: &'static str) {
    let at = Location::caller(); // here: inside the closure below it would be this file's
    NEXT_GP_LABEL.with(|n| n.set(Some((at, label))));
}

/// Whether the grace period this core asks for now was left out (and forgets its label).
pub fn grace_period_omitted() -> bool {
    let next = NEXT_GP_LABEL.with(|n| n.take());
    let hit = next.is_some_and(|(at, l)| {
        NO_GRACE_PERIOD.with(|o| matches!(o.get(), Some((f, label)) if label == l && at.file().ends_with(f)))
    });
    if hit {
        OMITTED_REACHED.with(|r| r.set(true));
    }
    hit
}

fn restore_grace_periods() {
    NO_GRACE_PERIOD.with(|o| o.set(None));
}
