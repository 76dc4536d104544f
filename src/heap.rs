//! The global heap: `linked_list_allocator` (a small, maintained first-fit allocator) over a
//! static region in `.heap`, behind a spin lock taken with interrupts masked so an interrupt
//! handler that allocates cannot deadlock against the code it interrupted.

use crate::arch::IrqGuard;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bytes of heap.
pub const HEAP_SIZE: usize = 32 * 1024 * 1024;

#[repr(C, align(4096))]
struct Region([u8; HEAP_SIZE]);

#[unsafe(link_section = ".heap")]
#[used]
static mut REGION: Region = Region([0; HEAP_SIZE]);

struct Heap(spin::Mutex<linked_list_allocator::Heap>);

#[global_allocator]
static HEAP: Heap = Heap(spin::Mutex::new(linked_list_allocator::Heap::empty()));

/// Hands the region to the allocator.
///
/// # Safety
/// Once, on core 0, before any allocation.
pub unsafe fn init() {
    // SAFETY: the region is used by nothing else, and this runs once before any allocation.
    unsafe { HEAP.0.lock().init(core::ptr::addr_of_mut!(REGION.0) as *mut u8, HEAP_SIZE) };
}

/// Allocations made so far (all cores): bumped under the heap lock, so a Relaxed load and store
/// (no atomic read-modify-write) suffice. For tests and the bench's allocations per operation.
static ALLOCS: AtomicU64 = AtomicU64::new(0);

/// Allocations made so far, on all cores (`alloc` calls that returned memory or failed).
pub fn allocations() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

/// Bytes currently allocated.
pub fn used() -> usize {
    let _irq = IrqGuard::new();
    let heap = HEAP.0.lock();
    heap.used()
}

// The lock guard is always a local declared after the IrqGuard, so it is released first and
// interrupts are unmasked only after the lock is free. (A guard left as a temporary in a tail
// expression would be dropped after the locals, the IrqGuard included: a handler that allocates
// in that window spins for ever on its own core's lock. The torture found exactly that.)
// SAFETY: linked_list_allocator returns blocks that fit the layout and are disjoint; the lock
// serialises all cores and the IrqGuard keeps handlers on this core out while it is held.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _irq = IrqGuard::new();
        let mut heap = self.0.lock();
        // Under the lock: the only writer now.
        ALLOCS.store(ALLOCS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        heap.allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _irq = IrqGuard::new();
        let mut heap = self.0.lock();
        // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with this layout.
        unsafe { heap.deallocate(NonNull::new_unchecked(ptr), layout) }
    }
}
