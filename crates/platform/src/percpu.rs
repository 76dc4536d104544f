//! Per-core storage through TPIDR_EL1, as Linux's `__per_cpu_offset`.
//!
//! Static per-cpu variables ([`percpu!`](crate::percpu!)) live in the `.percpu` template section.
//! At boot core 0 copies the template into every core's area; each core's TPIDR_EL1 holds
//! `area(cpu) - __percpu_start`, so this core's copy of a variable is at `&VAR + TPIDR_EL1`: one
//! `mrs` and one load or store, no indexing by core number. Another core's copy is at
//! `&VAR + offset(cpu)`.
//!
//! ```text
//!  area(cpu):  [ static copy of .percpu (<= 16 KiB) | dynamic slots (16 KiB) ]
//!                ^ __percpu_start + TPIDR_EL1         ^ PercpuBox addresses + TPIDR_EL1
//! ```
//!
//! Dynamic per-cpu allocation ([`PercpuBox`], Linux's `alloc_percpu`) hands out a slot of
//! `size_of::<T>()` bytes at the same offset in every core's dynamic part, packed at 4-byte
//! granularity: a `u32` counter costs 4 bytes per core, and two objects' counters share a cache
//! line only when they belong to the same core.

use crate::arch;
use crate::MAX_CPUS;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Bytes reserved per core for the static template copy.
pub const PERCPU_STATIC_MAX: usize = 16 * 1024;
/// Bytes per core for dynamic allocations.
pub const PERCPU_DYN_SIZE: usize = 16 * 1024;
/// Bytes of one core's area (static copy and dynamic slots).
pub const AREA_SIZE: usize = PERCPU_STATIC_MAX + PERCPU_DYN_SIZE;
/// Alignment of an area (the template's: `percpu!` variables may be cache-line aligned).
pub const AREA_ALIGN: usize = 64;
/// Granularity of dynamic allocations.
const GRANULE: usize = 4;
const DYN_BITS: usize = PERCPU_DYN_SIZE / GRANULE;

/// Core 0's area, static: it needs one before the heap, the console and the device tree. The
/// other cores' areas are given at boot ([`add_area`]) for the cores present only.
#[repr(C, align(64))]
struct Area([u8; AREA_SIZE]);

#[unsafe(link_section = ".bss.percpu_areas")]
static mut AREA0: Area = Area([0; AREA_SIZE]);

// The template's bounds: the linker script's symbols on the firmware; on the host machine the
// ELF linker's own `__start_`/`__stop_` symbols of the `quiescent_percpu` section.
#[cfg(target_os = "none")]
unsafe extern "C" {
    static __percpu_start: u8;
    static __percpu_end: u8;
}
#[cfg(not(target_os = "none"))]
unsafe extern "C" {
    #[link_name = "__start_quiescent_percpu"]
    static __percpu_start: u8;
    #[link_name = "__stop_quiescent_percpu"]
    static __percpu_end: u8;
}

fn template_start() -> usize {
    core::ptr::addr_of!(__percpu_start) as usize
}

fn template_len() -> usize {
    core::ptr::addr_of!(__percpu_end) as usize - template_start()
}

/// `area(cpu) - __percpu_start` for every core (Linux's `__per_cpu_offset`); 8 bytes per core
/// of MAX_CPUS (4 KiB), the areas themselves exist only for the cores present.
static OFFSETS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Cores with an area: 0..NR_AREAS.
static NR_AREAS: AtomicUsize = AtomicUsize::new(0);

/// Copies the template into core 0's (static) area and records its offset.
///
/// Context: boot only, core 0, before the other cores start.
///
/// # Safety
/// Core 0 only, once, before any other core starts and before any per-cpu access.
pub unsafe fn init_areas() {
    let len = template_len();
    assert!(len <= PERCPU_STATIC_MAX, "per-cpu template is {} bytes, more than {}", len, PERCPU_STATIC_MAX);
    // SAFETY: no other core runs yet, so nothing else touches AREA0.
    let area = unsafe { core::ptr::addr_of_mut!(AREA0.0) as *mut u8 };
    // SAFETY: as add_area's.
    unsafe { install(0, area) };
}

/// # Safety
/// `area` is `AREA_SIZE` bytes, `AREA_ALIGN`-aligned, writable, used by nothing else.
unsafe fn install(cpu: usize, area: *mut u8) {
    // SAFETY: template and area do not overlap, and the template fits the area (init_areas).
    unsafe { core::ptr::copy_nonoverlapping(template_start() as *const u8, area, template_len()) };
    OFFSETS[cpu].store(area as usize - template_start(), Ordering::Relaxed);
    // Release: the area's copy and its offset before the count that makes them reachable; pairs
    // with `nr_areas` on the host machine (below).
    NR_AREAS.store(cpu + 1, Ordering::Release);
}

/// Gives core `cpu` its area at `area` (copied from the template): core 0, at boot, for cores
/// 1, 2, ... in order, before any dynamic per-cpu allocation (a [`PercpuBox`] initialises the
/// areas that exist when it is made).
///
/// Context: boot only, core 0, before the other cores start.
///
/// # Safety
/// `area` is `AREA_SIZE` bytes, `AREA_ALIGN`-aligned, writable and used by nothing else for the
/// whole run; `cpu` has not started.
pub unsafe fn add_area(cpu: usize, area: *mut u8) {
    assert!(cpu == nr_areas() && cpu < MAX_CPUS, "percpu: area for core {} out of order", cpu);
    assert!(DYN.lock().used() == 0, "percpu: area for core {} added after a dynamic per-cpu allocation", cpu);
    assert!((area as usize).is_multiple_of(AREA_ALIGN), "percpu: area of core {} misaligned", cpu);
    // SAFETY: the caller's contract.
    unsafe { install(cpu, area) };
}

/// Cores with a per-cpu area: `0..nr_areas()` (every core this run set up).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn nr_areas() -> usize {
    // On the firmware every core starts after core 0 has added all the areas (its start orders
    // them): Relaxed. On the host machine a thread that is not a core may look while `boot`
    // adds them: Acquire, pairing with `install`'s Release.
    const ORDER: Ordering = if cfg!(target_os = "none") { Ordering::Relaxed } else { Ordering::Acquire };
    let n = NR_AREAS.load(ORDER);
    // SAFETY: NR_AREAS is stored only by `install`, as `cpu + 1` after indexing OFFSETS[cpu]
    // (which panics for cpu >= MAX_CPUS). Told to the compiler, `offset`'s check against this
    // value covers OFFSETS' bounds too: one test per remote access, not two.
    unsafe { core::hint::assert_unchecked(n <= MAX_CPUS) };
    n
}

/// Points this core's TPIDR_EL1 at the area of `cpu` and records the core number in it.
///
/// Context: boot only, on core `cpu` itself, before its first per-cpu access.
///
/// # Safety
/// Called once per core, on that core, after [`init_areas`].
pub unsafe fn set_local_area(cpu: usize) {
    // SAFETY: the area was initialised by init_areas (caller's contract).
    unsafe { arch::set_tpidr(OFFSETS[cpu].load(Ordering::Relaxed)) };
    CPU_ID.set(cpu);
}

/// The offset of `cpu`'s area (template address + offset = that core's copy). A core without
/// an area (absent, or beyond the limit) is a named error, not core 0's copy by accident.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn offset(cpu: usize) -> usize {
    if cpu >= nr_areas() {
        no_area(cpu);
    }
    OFFSETS[cpu].load(Ordering::Relaxed)
}

#[cold]
#[inline(never)]
fn no_area(cpu: usize) -> ! {
    panic!("per-cpu area of core {} asked for: only cores 0..{} have one", cpu, nr_areas())
}

/// This core's per-cpu offset (TPIDR_EL1 on AArch64), as read by [`arch::percpu_base`]: only
/// that function makes one, so a function that takes a `PercpuBase` knows it is this core's.
/// Neither `Send` nor `Sync`: a base carried to another core would make that core's adds land
/// in this core's counters.
#[derive(Clone, Copy)]
pub struct PercpuBase(usize, PhantomData<*const ()>);

impl PercpuBase {
    /// For `percpu_base` only (each machine's arch module): `offset` is this core's.
    #[inline(always)]
    pub(crate) fn this_core(offset: usize) -> Self {
        PercpuBase(offset, PhantomData)
    }

    /// The offset.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn get(self) -> usize {
        self.0
    }
}

/// Declares static per-cpu variables, private to each core: `percpu! { pub static COUNT: u64 = 0; }`.
/// Each core gets its own copy, initialised from the given value, reached through [`Percpu`]'s
/// accessors (values in and out, never a reference). The only way to make a [`Percpu`]: its
/// accessors are sound only for a static in the `.percpu` template section, which this places
/// it in.
#[macro_export]
macro_rules! percpu {
    ($($(#[$m:meta])* $vis:vis static $name:ident : $ty:ty = $init:expr;)+) => {$(
        $(#[$m])*
        #[cfg_attr(target_os = "none", unsafe(link_section = ".percpu"))]
        #[cfg_attr(not(target_os = "none"), unsafe(link_section = "quiescent_percpu"))]
        $vis static $name: $crate::percpu::Percpu<$ty> = {
            let init: $ty = $init;
            // SAFETY: a static in the `.percpu` template section, as `Percpu::new` requires.
            unsafe { $crate::percpu::Percpu::new(init) }
        };
    )+};
}

/// Declares static per-cpu variables that other cores read too (Linux's per-cpu `rcu_data`):
/// `percpu_shared! { pub static STATE: Line = Line::new(); }`. The type must be `Sync` (atomics,
/// locks): [`PercpuShared`] hands out shared references to any core's copy.
#[macro_export]
macro_rules! percpu_shared {
    ($($(#[$m:meta])* $vis:vis static $name:ident : $ty:ty = $init:expr;)+) => {$(
        $(#[$m])*
        #[cfg_attr(target_os = "none", unsafe(link_section = ".percpu"))]
        #[cfg_attr(not(target_os = "none"), unsafe(link_section = "quiescent_percpu"))]
        $vis static $name: $crate::percpu::PercpuShared<$ty> = {
            let init: $ty = $init;
            // SAFETY: a static in the `.percpu` template section, as `PercpuShared::new` requires.
            unsafe { $crate::percpu::PercpuShared::new(init) }
        };
    )+};
}

mod sealed {
    pub trait Sealed {}
}

/// A value one naturally aligned load or store moves whole (ARMv8 single-copy atomicity): what
/// [`Percpu::get`], [`Percpu::set`] and the remote reads accept, so that neither an interrupt
/// handler on the same core nor a reader on another core can see half of a write (a torn
/// `&[u8]` would pair one slice's pointer with another's length). Accesses are Relaxed atomics:
/// a plain `ldr`/`str`, and no data race in Rust's model when another core reads meanwhile.
pub trait Word: Copy + Send + Sync + sealed::Sealed {
    #[doc(hidden)]
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    ///
    /// # Safety
    /// `p` is valid and aligned for `Self`; every concurrent access is atomic.
    unsafe fn load(p: *mut Self) -> Self;
    #[doc(hidden)]
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    ///
    /// # Safety
    /// As `load`.
    unsafe fn store(p: *mut Self, v: Self);
}

macro_rules! word {
    ($($t:ty => $a:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Word for $t {
            #[inline(always)]
            unsafe fn load(p: *mut Self) -> Self {
                // SAFETY: the caller's contract; the atomic type has the size and alignment of $t.
                unsafe { core::sync::atomic::$a::from_ptr(p) }.load(Ordering::Relaxed)
            }
            #[inline(always)]
            unsafe fn store(p: *mut Self, v: Self) {
                // SAFETY: as `load`.
                unsafe { core::sync::atomic::$a::from_ptr(p) }.store(v, Ordering::Relaxed)
            }
        }
    )*};
}

word!(u8 => AtomicU8, u16 => AtomicU16, u32 => AtomicU32, u64 => AtomicU64, usize => AtomicUsize,
      i8 => AtomicI8, i16 => AtomicI16, i32 => AtomicI32, i64 => AtomicI64, isize => AtomicIsize,
      bool => AtomicBool);

/// A static per-cpu variable private to each core (declare with [`percpu!`](crate::percpu!)). The
/// value in the `.percpu` section is only the template; accessors add this core's TPIDR_EL1.
///
/// What safe code can do with it, and why each is sound:
/// * [`get`](Self::get), [`set`](Self::set) (a [`Word`]): this core's copy, one single-copy-atomic
///   access, so an interrupt handler touching the same copy sees the old or the new value.
/// * [`with`](Self::with) (any `Copy` type): read-modify-write of this core's copy with
///   interrupts masked, through a copy on the stack, so no reference to the copy itself exists.
/// * [`this_cpu_add`](Self::this_cpu_add) (`u32`): Linux's IRQ-safe local add.
///
/// Only the owning core touches a copy (so `with`'s plain write-back races with nothing), and no
/// `&T` to a copy is ever handed out (a reference could see the copy change under it through
/// `set`). Per-cpu data other cores read is a [`PercpuShared`] (atomics, locks).
#[repr(transparent)]
pub struct Percpu<T> {
    template: UnsafeCell<T>,
}

// SAFETY: a core reaches only its own copy (`get`/`set`/`with`/`this_cpu_add`); nothing safe
// reaches another core's, and no reference to a copy is handed out. So no two cores access one
// copy. `T: Send` because an interrupt handler on the same core is, for the copy, another
// thread: a `!Send` value (a `&Cell`) shared by the interrupted code and the handler could be
// torn between them.
unsafe impl<T: Send> Sync for Percpu<T> {}

impl<T> Percpu<T> {
    /// A template value (for [`percpu!`](crate::percpu!) only).
    ///
    /// Context: a `percpu!` static's initialiser only (const).
    ///
    /// # Safety
    /// The result must be a `static` in the `.percpu` section: its accessors reach
    /// `&self + TPIDR_EL1`, which is this core's copy only for the template.
    #[doc(hidden)]
    pub const unsafe fn new(v: T) -> Self {
        const { assert!(core::mem::align_of::<T>() <= AREA_ALIGN, "per-cpu variables are at most cache-line aligned") };
        Percpu { template: UnsafeCell::new(v) }
    }

    /// This core's copy: `&template + TPIDR_EL1` (an `mrs` and an `add`).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn local_ptr(&self) -> *mut T {
        (self.template.get() as usize).wrapping_add(arch::tpidr()) as *mut T
    }

    /// Core `cpu`'s copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline]
    pub fn remote_ptr(&self, cpu: usize) -> *mut T {
        (self.template.get() as usize).wrapping_add(offset(cpu)) as *mut T
    }
}

impl<T: Copy> Percpu<T> {
    /// Runs `f` on this core's value with interrupts masked, so no handler on this core sees it
    /// half-way, and writes the result back. `f` works on a copy on the stack: even if it
    /// unmasks interrupts, or updates the same variable itself, nothing aliases (a handler's
    /// update in between is overwritten, as a lost update, not undefined behaviour); the write
    /// back masks interrupts again.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let _irq = arch::IrqGuard::new();
        // SAFETY: this core's copy, valid for the whole run; interrupts are masked, so no
        // handler on this core writes it meanwhile, and other cores never write it.
        let mut v = unsafe { core::ptr::read(self.local_ptr()) };
        let r = f(&mut v);
        let _again = arch::IrqGuard::new();
        // SAFETY: as above (masked again, whatever `f` did).
        unsafe { core::ptr::write(self.local_ptr(), v) };
        r
    }
}

impl<T: Word> Percpu<T> {
    /// Reads this core's copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn get(&self) -> T {
        // SAFETY: this core's copy, valid for the whole run, aligned; a Word access.
        unsafe { T::load(self.local_ptr()) }
    }

    /// Writes this core's copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn set(&self, v: T) {
        // SAFETY: as `get`.
        unsafe { T::store(self.local_ptr(), v) }
    }
}

impl Percpu<u32> {
    /// Linux's `this_cpu_add`: IRQ-safe, barrier-free add to this core's copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn this_cpu_add(&self, delta: u32) {
        // SAFETY: the template address of a static per-cpu u32.
        unsafe { arch::this_cpu_add_u32(self.template.get(), delta) };
    }
}

/// A static per-cpu variable other cores read too (declare with
/// [`percpu_shared!`](crate::percpu_shared!)): shared references to this core's copy
/// ([`local`](Self::local)) and to any core's ([`remote`](Self::remote)), so `T` must be `Sync`
/// (atomics, locks) and is changed only through them.
#[repr(transparent)]
pub struct PercpuShared<T> {
    template: UnsafeCell<T>,
}

// SAFETY: only shared references to the copies are handed out, to any core: sound for T: Sync.
unsafe impl<T: Sync> Sync for PercpuShared<T> {}

impl<T: Sync> PercpuShared<T> {
    /// A template value (for [`percpu_shared!`](crate::percpu_shared!) only).
    ///
    /// Context: a `percpu_shared!` static's initialiser only (const).
    ///
    /// # Safety
    /// As [`Percpu::new`]: a `static` in the `.percpu` section.
    #[doc(hidden)]
    pub const unsafe fn new(v: T) -> Self {
        // Each core's copy is only AREA_ALIGN-aligned (core 0's area, the template's section).
        const { assert!(core::mem::align_of::<T>() <= AREA_ALIGN, "per-cpu variables are at most cache-line aligned") };
        PercpuShared { template: UnsafeCell::new(v) }
    }

    /// This core's copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn local(&self) -> &T {
        // SAFETY: this core's copy of a template static lives for the whole run and is never
        // mutated except through T's own interior mutability (T: Sync).
        unsafe { &*((self.template.get() as usize).wrapping_add(arch::tpidr()) as *const T) }
    }

    /// Core `cpu`'s copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline]
    pub fn remote(&self, cpu: usize) -> &T {
        // SAFETY: as `local`, for core `cpu`'s area (which `offset` checks exists).
        unsafe { &*((self.template.get() as usize).wrapping_add(offset(cpu)) as *const T) }
    }
}

crate::percpu! {
    /// The logical number of the core this copy belongs to.
    static CPU_ID: usize = 0;
}

/// The logical number of the running core (0 = the boot core).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn cpu_id() -> usize {
    CPU_ID.get()
}

// ---------------------------------------------------------------------------------------------
// Dynamic allocation.
// ---------------------------------------------------------------------------------------------

/// Why a per-cpu allocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PercpuAllocError {
    /// No free run of slots of the requested size and alignment is left.
    OutOfSpace,
    /// The alignment exceeds a cache line, or the type has size 0.
    BadLayout,
}

impl core::fmt::Display for PercpuAllocError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PercpuAllocError::OutOfSpace => "per-cpu space exhausted",
            PercpuAllocError::BadLayout => "per-cpu allocation of a zero-sized or over-aligned type",
        })
    }
}

struct Bitmap([u64; DYN_BITS / 64]);

impl Bitmap {
    fn is_free(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) == 0
    }
    fn set(&mut self, start: usize, n: usize, used: bool) {
        for i in start..start + n {
            if used {
                self.0[i / 64] |= 1 << (i % 64);
            } else {
                self.0[i / 64] &= !(1 << (i % 64));
            }
        }
    }
    /// First fit of `n` granules starting at a multiple of `step`.
    fn find(&self, n: usize, step: usize) -> Option<usize> {
        let mut start = 0;
        while start + n <= DYN_BITS {
            match (start..start + n).find(|&i| !self.is_free(i)) {
                None => return Some(start),
                Some(used) => start = (used + 1).next_multiple_of(step),
            }
        }
        None
    }
    fn used(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

static DYN: spin::Mutex<Bitmap> = spin::Mutex::new(Bitmap([0; DYN_BITS / 64]));

/// Bytes of each core's dynamic per-cpu space in use.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn dyn_bytes_used() -> usize {
    let _irq = arch::IrqGuard::new();
    let map = DYN.lock(); // released before the IrqGuard (see heap.rs)
    map.used() * GRANULE
}

/// A per-cpu object from the dynamic area (Linux's `alloc_percpu`): one `T` per core at the
/// same offset in every core's area. Freed when dropped (T's own drop does not run: `T: Copy`).
pub struct PercpuBox<T: Copy> {
    /// Template-relative address: add a core's offset to reach its copy.
    addr: usize,
    _t: PhantomData<T>,
}

// SAFETY: a PercpuBox hands out raw per-core pointers and values: its own core's (get/set), and
// copies of other cores' values only for `T: Word` (Send, single-copy atomic); remote writes are
// unsafe.
unsafe impl<T: Copy + Send> Send for PercpuBox<T> {}
// SAFETY: as above.
unsafe impl<T: Copy + Send> Sync for PercpuBox<T> {}

impl<T: Copy> PercpuBox<T> {
    /// Allocates one `T` per core (every possible core), each initialised to `init`.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates per-cpu space.
    /// (On the host machine, a thread that is not a core waits here for `boot` to finish.)
    pub fn new(init: T) -> Result<Self, PercpuAllocError> {
        #[cfg(not(target_os = "none"))]
        crate::host::wait_for_areas();
        let size = core::mem::size_of::<T>();
        let align = core::mem::align_of::<T>();
        if size == 0 || align > 64 {
            return Err(PercpuAllocError::BadLayout);
        }
        let n = size.div_ceil(GRANULE);
        let step = align.div_ceil(GRANULE).max(1);
        let start = {
            let _irq = arch::IrqGuard::new();
            let mut map = DYN.lock();
            let start = map.find(n, step).ok_or(PercpuAllocError::OutOfSpace)?;
            map.set(start, n, true);
            start
        };
        let b: PercpuBox<T> =
            PercpuBox { addr: template_start() + PERCPU_STATIC_MAX + start * GRANULE, _t: PhantomData };
        for cpu in 0..nr_areas() {
            // SAFETY: the slot was just reserved for this box in every core's area; nobody else
            // can reach it yet.
            unsafe { b.remote_ptr(cpu).write(init) };
        }
        Ok(b)
    }

    /// This core's copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn local_ptr(&self) -> *mut T {
        self.addr.wrapping_add(arch::tpidr()) as *mut T
    }

    /// Core `cpu`'s copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline]
    pub fn remote_ptr(&self, cpu: usize) -> *mut T {
        self.addr.wrapping_add(offset(cpu)) as *mut T
    }

    /// The template-relative address (what [`arch::this_cpu_add_u32`] takes).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn template_addr(&self) -> usize {
        self.addr
    }
}

impl<T: Word> PercpuBox<T> {
    /// Reads this core's copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn get(&self) -> T {
        // SAFETY: this core's copy of a live allocation, aligned; a Word access.
        unsafe { T::load(self.local_ptr()) }
    }

    /// Writes this core's copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn set(&self, v: T) {
        // SAFETY: as `get`.
        unsafe { T::store(self.local_ptr(), v) }
    }

    /// Reads core `cpu`'s copy (its owner may be adding to it: the old or the new value).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn remote_get(&self, cpu: usize) -> T {
        // SAFETY: a live allocation, aligned; a Word access.
        unsafe { T::load(self.remote_ptr(cpu)) }
    }

    /// Writes core `cpu`'s copy.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    ///
    /// # Safety
    /// Core `cpu` must not be updating its copy at the same time (its restartable add is not
    /// atomic against another core's store: one of the two would be lost).
    pub unsafe fn remote_set(&self, cpu: usize, v: T) {
        // SAFETY: a live allocation, aligned; a Word access; exclusivity is the caller's contract.
        unsafe { T::store(self.remote_ptr(cpu), v) }
    }
}

/// The counter operations of a `PercpuBox` of `u32` or `u64`, over the matching restartable adds.
macro_rules! counter_ops {
    ($t:ty, $add:ident, $imm:ident, $imm_at:ident) => {
        impl PercpuBox<$t> {
            /// Linux's `this_cpu_add` on this core's counter: IRQ-safe, no barrier.
            ///
            /// Context: any (task, interrupt handler, RCU callback); never blocks.
            #[inline(always)]
            pub fn this_cpu_add(&self, delta: $t) {
                // SAFETY: the template address of this live dynamic per-cpu counter.
                unsafe { arch::$add(self.addr as *mut $t, delta) };
            }

            /// Linux's `this_cpu_inc`: `this_cpu_add(1)` with the 1 as an immediate.
            ///
            /// Context: any (task, interrupt handler, RCU callback); never blocks.
            #[inline(always)]
            pub fn this_cpu_inc(&self) {
                // SAFETY: as `this_cpu_add`.
                unsafe { arch::$imm::<1>(self.addr as *mut $t) };
            }

            /// Linux's `this_cpu_dec`.
            ///
            /// Context: any (task, interrupt handler, RCU callback); never blocks.
            #[inline(always)]
            pub fn this_cpu_dec(&self) {
                // SAFETY: as `this_cpu_add`.
                unsafe { arch::$imm::<-1>(self.addr as *mut $t) };
            }

            /// `this_cpu_inc` with TPIDR_EL1 already read into `base` ([`arch::percpu_base`]).
            ///
            /// Context: any (task, interrupt handler, RCU callback); never blocks.
            #[inline(always)]
            pub fn this_cpu_inc_at(&self, base: arch::PercpuBase) {
                // SAFETY: as `this_cpu_add`.
                unsafe { arch::$imm_at::<1>(self.addr as *mut $t, base) };
            }

            /// `this_cpu_dec` with TPIDR_EL1 already read into `base` ([`arch::percpu_base`]).
            ///
            /// Context: any (task, interrupt handler, RCU callback); never blocks.
            #[inline(always)]
            pub fn this_cpu_dec_at(&self, base: arch::PercpuBase) {
                // SAFETY: as `this_cpu_add`.
                unsafe { arch::$imm_at::<-1>(self.addr as *mut $t, base) };
            }

            /// The wrapping sum over `cpus` (per-core counters may wrap; only the sum is meaningful).
            ///
            /// Context: any (task, interrupt handler, RCU callback); never blocks.
            pub fn sum(&self, cpus: impl Iterator<Item = usize>) -> $t {
                cpus.fold(0, |s, c| s.wrapping_add(self.remote_get(c)))
            }
        }
    };
}

counter_ops!(u32, this_cpu_add_u32, this_cpu_add_imm_u32, this_cpu_add_imm_u32_at);
counter_ops!(u64, this_cpu_add_u64, this_cpu_add_imm_u64, this_cpu_add_imm_u64_at);

impl<T: Copy> Drop for PercpuBox<T> {
    fn drop(&mut self) {
        let start = (self.addr - template_start() - PERCPU_STATIC_MAX) / GRANULE;
        let n = core::mem::size_of::<T>().div_ceil(GRANULE);
        let _irq = arch::IrqGuard::new();
        DYN.lock().set(start, n, false);
    }
}
