//! percpu_ref torture: get/put/tryget/tryget_live storms on every core, in task context and in
//! interrupt handlers (the tick, and `call_function_single` closures, some of which linger so
//! that a get or put they interrupted stays half-done for a while), on a few refs whose owners
//! cycle them through kill, kill_and_confirm, switch_to_atomic(_sync), switch_to_percpu,
//! resurrect and reinit.
//!
//! Checks:
//! * `release` runs exactly once per lifetime (from init or reinit to zero): a second run is
//!   "release twice"; a kill whose release has not run 3 s later is "release missing";
//! * a holder never sees its ref released ("use after release"): checked right after each
//!   successful tryget and again before its last put;
//! * no `tryget_live` succeeds once the kill's `confirm` has run ("live after confirm");
//! * `confirm` runs before `release`;
//! * no misuse is reported (a put below zero or a get on a released ref means the count lost a
//!   get or a put).

use super::common::{self, delay_ns, hold_ns, PerCore, Rng, Torture};
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use quiescent::smp::{AtomicCtx, Ctx};
use quiescent::sync::percpu_ref::{self as pref, Flags, PercpuRef};
use quiescent::{rcu, smp};

const NSLOTS: usize = 4;
const LIVE: u32 = 0;
const KILLED: u32 = 1;
const RELEASED: u32 = 2;
/// A kill whose release never came: the slot is left alone from then on.
const BROKEN: u32 = 3;
/// How long after a kill its release may take (grace periods under a loaded host included).
const RELEASE_TIMEOUT_MS: u64 = 3000;

/// RELEASE_TIMEOUT_MS, stretched past 8 cores (see `common::slack`).
fn release_timeout_ms() -> u64 {
    RELEASE_TIMEOUT_MS * common::slack()
}

struct Slot {
    r: spin::Once<Arc<PercpuRef>>,
    /// The owner role: try-locked by whichever core wants to change the ref's mode.
    owner: AtomicBool,
    /// LIVE / KILLED / RELEASED / BROKEN (the owner's state machine).
    state: AtomicU32,
    /// Lifetime number: incremented before each reinit.
    gen: AtomicU64,
    /// True from (re)init until release.
    alive: AtomicBool,
    /// The lifetime whose kill `confirm` has run.
    confirmed_gen: AtomicU64,
    kill_at_ms: AtomicU64,
}

static SLOTS: [Slot; NSLOTS] = [const {
    Slot {
        r: spin::Once::new(),
        owner: AtomicBool::new(false),
        state: AtomicU32::new(LIVE),
        gen: AtomicU64::new(1),
        alive: AtomicBool::new(false),
        confirmed_gen: AtomicU64::new(0),
        kill_at_ms: AtomicU64::new(0),
    }
}; NSLOTS];

static KILLS: AtomicU64 = AtomicU64::new(0);
static CONFIRMS: AtomicU64 = AtomicU64::new(0);
static RELEASES: AtomicU64 = AtomicU64::new(0);
static RESURRECTS: AtomicU64 = AtomicU64::new(0);
static REINITS: AtomicU64 = AtomicU64::new(0);
static TO_ATOMIC: AtomicU64 = AtomicU64::new(0);
static TO_PERCPU: AtomicU64 = AtomicU64::new(0);
static GETS: PerCore = PerCore::new();
static IRQ_GETS: AtomicU64 = AtomicU64::new(0);
// Failures.
static RELEASE_TWICE: AtomicU64 = AtomicU64::new(0);
static RELEASE_MISSING: AtomicU64 = AtomicU64::new(0);
static USE_AFTER_RELEASE: AtomicU64 = AtomicU64::new(0);
static LIVE_AFTER_CONFIRM: AtomicU64 = AtomicU64::new(0);
static CONFIRM_AFTER_RELEASE: AtomicU64 = AtomicU64::new(0);
static OWNER_ERRORS: AtomicU64 = AtomicU64::new(0);

fn bad(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
    common::fail();
}

fn released(i: usize) {
    RELEASES.fetch_add(1, Ordering::Relaxed);
    if !SLOTS[i].alive.swap(false, Ordering::AcqRel) {
        bad(&RELEASE_TWICE);
    }
}

/// Takes and drops references on a random slot: `n` tryget/tryget_live attempts, each followed,
/// when it succeeds, by a get/put pair and the final put.
fn user(ctx: &AtomicCtx, rng: &mut Rng, n: u64, in_irq: bool) {
    let s = &SLOTS[rng.below(NSLOTS as u64) as usize];
    let Some(r) = s.r.get() else { return };
    for _ in 0..n {
        let gen0 = s.gen.load(Ordering::Acquire);
        let confirmed = s.confirmed_gen.load(Ordering::Acquire) == gen0;
        let live = rng.pct(50);
        let ok = if live { r.tryget_live(ctx) } else { r.tryget(ctx) };
        if !ok {
            continue;
        }
        // The checks below read after the get: in percpu mode it is a plain load of the mode
        // word and an add, so order the loads after it as an acquiring get would.
        fence(Ordering::Acquire);
        if !s.alive.load(Ordering::Relaxed) {
            bad(&USE_AFTER_RELEASE);
        }
        if live && confirmed && s.gen.load(Ordering::Relaxed) == gen0 {
            bad(&LIVE_AFTER_CONFIRM);
        }
        r.get(ctx);
        if !in_irq {
            delay_ns(hold_ns(rng, 2_000, 50_000));
        }
        r.put(ctx);
        if !s.alive.load(Ordering::Acquire) {
            bad(&USE_AFTER_RELEASE);
        }
        r.put(ctx); // may be the last: release runs here (in an interrupt handler, too)
        if in_irq {
            IRQ_GETS.fetch_add(1, Ordering::Relaxed);
        } else {
            GETS.inc();
        }
    }
}

/// An interrupt handler that takes its time (now and then): the code it interrupted may be in
/// the middle of a get or put, between loading the mode word and adding to its counter, and a
/// kill on another core must not fold the counters before that add lands.
fn linger(rng: &mut Rng) {
    if rng.pct(30) {
        delay_ns(20_000 + rng.below(80_000));
    }
}

/// Interrupts another core (busy in its own storm, a blocking wait, or asleep) with users in its
/// interrupt context, as `call_function_single` closures.
fn ipi_user(ctx: &mut Ctx, rng: &mut Rng) {
    let cpus: alloc::vec::Vec<usize> = smp::online_cpus().filter(|&c| c != quiescent::percpu::cpu_id()).collect();
    if cpus.is_empty() {
        return;
    }
    let target = cpus[rng.below(cpus.len() as u64) as usize];
    let seed = rng.next();
    quiescent::smp::ipi::call_function_single(ctx, target, move |actx| {
        let mut r = Rng::new(seed);
        let n = 1 + r.below(4);
        user(actx, &mut r, n, true);
        linger(&mut r);
    });
}

/// Interrupt-context users (the tick, and the RCU torture's IPI readers).
pub fn irq_user(ctx: &AtomicCtx, rng: &mut Rng) {
    if common::config().which.pref {
        let n = 1 + rng.below(4);
        user(ctx, rng, n, true);
    }
}

/// One step of a random slot's owner.
fn owner(ctx: &mut Ctx, rng: &mut Rng) {
    let i = rng.below(NSLOTS as u64) as usize;
    let s = &SLOTS[i];
    if s.owner.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        return;
    }
    let r = s.r.get().expect("slots set up at start");
    let now = common::now_ms();
    if pref::misuse_reports() != 0 {
        // A put below zero or a get on a released ref: the count lost a get or a put.
        common::fail();
    }
    match s.state.load(Ordering::Relaxed) {
        LIVE => match rng.below(100) {
            0..=29 => {
                s.kill_at_ms.store(now, Ordering::Relaxed);
                s.state.store(KILLED, Ordering::Relaxed);
                KILLS.fetch_add(1, Ordering::Relaxed);
                r.kill(ctx);
            }
            30..=49 => {
                let gen = s.gen.load(Ordering::Relaxed);
                s.kill_at_ms.store(now, Ordering::Relaxed);
                s.state.store(KILLED, Ordering::Relaxed);
                KILLS.fetch_add(1, Ordering::Relaxed);
                r.kill_and_confirm(ctx, move || {
                    let s = &SLOTS[i];
                    if !s.alive.load(Ordering::Acquire) {
                        bad(&CONFIRM_AFTER_RELEASE);
                    }
                    CONFIRMS.fetch_add(1, Ordering::Relaxed);
                    s.confirmed_gen.store(gen, Ordering::Release);
                });
            }
            50..=64 => {
                r.switch_to_atomic_sync(ctx);
                TO_ATOMIC.fetch_add(1, Ordering::Relaxed);
                // Exact now, and at least the initial reference.
                if r.count().is_none_or(|c| c < 1) {
                    defmt::println!(
                        "percpu_ref-torture: !!! count {} after switch_to_atomic_sync",
                        r.count().unwrap_or(-1)
                    );
                    bad(&OWNER_ERRORS);
                }
            }
            65..=74 => {
                r.switch_to_atomic(ctx, || {});
                TO_ATOMIC.fetch_add(1, Ordering::Relaxed);
            }
            75..=89 => {
                r.switch_to_percpu(ctx);
                TO_PERCPU.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                // Kill and bring back while holding a reference of our own (resurrect needs a
                // ref that has not reached zero).
                r.get(ctx);
                r.kill(ctx);
                delay_ns(rng.below(20_000));
                match r.resurrect(ctx) {
                    Ok(()) => {
                        RESURRECTS.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        defmt::println!("percpu_ref-torture: !!! resurrect failed: {=str}", e.text());
                        bad(&OWNER_ERRORS);
                    }
                }
                r.put(ctx);
            }
        },
        KILLED => {
            if !s.alive.load(Ordering::Acquire) {
                s.state.store(RELEASED, Ordering::Relaxed);
            } else if now.saturating_sub(s.kill_at_ms.load(Ordering::Relaxed)) > release_timeout_ms() {
                defmt::println!(
                    "percpu_ref-torture: !!! slot {}: release did not run within {} ms of kill",
                    i,
                    release_timeout_ms()
                );
                bad(&RELEASE_MISSING);
                s.state.store(BROKEN, Ordering::Relaxed);
            }
        }
        RELEASED => {
            // A new lifetime: its number first, then alive, then the ref (users that get it see
            // both).
            s.gen.fetch_add(1, Ordering::Release);
            s.alive.store(true, Ordering::Release);
            match r.reinit(ctx) {
                Ok(()) => {
                    REINITS.fetch_add(1, Ordering::Relaxed);
                    s.state.store(LIVE, Ordering::Relaxed);
                }
                Err(e) => {
                    defmt::println!("percpu_ref-torture: !!! reinit after release failed: {=str}", e.text());
                    bad(&OWNER_ERRORS);
                    s.state.store(BROKEN, Ordering::Relaxed);
                }
            }
        }
        _ => {}
    }
    s.owner.store(false, Ordering::Release);
}

pub struct RefTorture;

pub static REF_TORTURE: RefTorture = RefTorture;

impl Torture for RefTorture {
    fn name(&self) -> &'static str {
        "percpu_ref-torture"
    }

    fn start(&self) {
        for (i, s) in SLOTS.iter().enumerate() {
            s.alive.store(true, Ordering::Relaxed);
            let r = PercpuRef::init(move |_| released(i), Flags::ALLOW_REINIT).expect("percpu_ref: per-cpu space");
            s.r.call_once(|| r);
        }
    }

    fn weight(&self) -> u64 {
        25
    }

    fn op(&self, ctx: &mut Ctx, rng: &mut Rng, pick: u64) {
        match pick {
            0..=17 => {
                let n = 1 + rng.below(32);
                user(ctx, rng, n, false);
            }
            18..=19 => ipi_user(ctx, rng),
            _ => owner(ctx, rng),
        }
    }

    fn irq(&self, ctx: &AtomicCtx, rng: &mut Rng) {
        if rng.pct(50) {
            let n = 1 + rng.below(4);
            user(ctx, rng, n, true);
            linger(rng);
        }
    }

    fn finish(&self, ctx: &mut Ctx) {
        // Every slot ends killed and released.
        for (i, s) in SLOTS.iter().enumerate() {
            let r = s.r.get().expect("set up");
            if s.state.load(Ordering::Relaxed) == LIVE {
                s.kill_at_ms.store(common::now_ms(), Ordering::Relaxed);
                s.state.store(KILLED, Ordering::Relaxed);
                KILLS.fetch_add(1, Ordering::Relaxed);
                r.kill(ctx);
            }
            if s.state.load(Ordering::Relaxed) == KILLED {
                let t0 = common::now_ms();
                rcu::wait_quiescent(ctx, || {
                    s.alive.load(Ordering::Acquire) && common::now_ms() - t0 < release_timeout_ms()
                });
                if s.alive.load(Ordering::Acquire) {
                    defmt::println!(
                        "percpu_ref-torture: !!! slot {}: release did not run within {} ms of the final kill",
                        i,
                        release_timeout_ms()
                    );
                    bad(&RELEASE_MISSING);
                } else {
                    s.state.store(RELEASED, Ordering::Relaxed);
                }
            }
        }
    }

    fn stats(&self) -> bool {
        let misuse = pref::misuse_reports();
        let fails = [
            ("release twice", RELEASE_TWICE.load(Ordering::Relaxed)),
            ("release missing", RELEASE_MISSING.load(Ordering::Relaxed)),
            ("use after release", USE_AFTER_RELEASE.load(Ordering::Relaxed)),
            ("live after confirm", LIVE_AFTER_CONFIRM.load(Ordering::Relaxed)),
            ("confirm after release", CONFIRM_AFTER_RELEASE.load(Ordering::Relaxed)),
            ("owner errors", OWNER_ERRORS.load(Ordering::Relaxed)),
            ("misuse reports", misuse),
        ];
        let bad_total: u64 = fails.iter().map(|f| f.1).sum();
        let (mx, mn) = GETS.max_min();
        defmt::println!(
            "percpu_ref-torture: kills: {} confirms: {} releases: {} resurrects: {} reinits: {} switches: atomic {} percpu {} gets: {} (Max/Min {}/{}) irq-gets: {} cores: {}",
            KILLS.load(Ordering::Relaxed), CONFIRMS.load(Ordering::Relaxed), RELEASES.load(Ordering::Relaxed),
            RESURRECTS.load(Ordering::Relaxed), REINITS.load(Ordering::Relaxed), TO_ATOMIC.load(Ordering::Relaxed),
            TO_PERCPU.load(Ordering::Relaxed), GETS.total(), mx, mn, IRQ_GETS.load(Ordering::Relaxed), smp::num_online()
        );
        defmt::println!(
            "percpu_ref-torture: {=str}Release twice: {} missing: {} Use-after-release: {} Live-after-confirm: {} Confirm-after-release: {} Owner-errors: {} Misuse: {}",
            if bad_total != 0 { "!!! " } else { "" },
            fails[0].1, fails[1].1, fails[2].1, fails[3].1, fails[4].1, fails[5].1, fails[6].1
        );
        for (what, n) in fails {
            if n != 0 {
                defmt::println!("percpu_ref-torture: !!! {=str}: {}", what, n);
            }
        }
        bad_total == 0
    }

    fn params(&self) -> String {
        alloc::format!("nrefs={} release_timeout_ms={}", NSLOTS, release_timeout_ms())
    }
}
