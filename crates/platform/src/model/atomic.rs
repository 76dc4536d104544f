//! The atomics: loom's, under the platform's names, each access's ordering open to a negative
//! control through [`ordering!`](crate::ordering!).

use super::Ordering;
use core::panic::Location;

/// The ordering an access uses (a negative control degrades a labelled one at its call site,
/// through [`labelled_ordering`]).
fn order(o: Ordering, _at: &Location<'_>) -> Ordering {
    o
}

macro_rules! atomic {
    ($(#[$m:meta])* $name:ident, $t:ty) => {
        $(#[$m])*
        /// loom's atomic under the platform's name (a labelled access's ordering comes from
        /// [`ordering!`](crate::ordering!)).
        pub struct $name(loom::sync::atomic::$name);

        impl $name {
            /// A new atomic (inside a model execution).
            #[track_caller]
            pub fn new(v: $t) -> Self {
                $name(loom::sync::atomic::$name::new(v))
            }
            /// Load.
            #[track_caller]
            pub fn load(&self, o: Ordering) -> $t {
                self.0.load(order(o, Location::caller()))
            }
            /// Store.
            #[track_caller]
            pub fn store(&self, v: $t, o: Ordering) {
                self.0.store(v, order(o, Location::caller()))
            }
            /// Swap.
            #[track_caller]
            pub fn swap(&self, v: $t, o: Ordering) -> $t {
                self.0.swap(v, order(o, Location::caller()))
            }
            /// Compare and exchange.
            #[track_caller]
            pub fn compare_exchange(&self, c: $t, n: $t, s: Ordering, f: Ordering) -> Result<$t, $t> {
                let at = Location::caller();
                self.0.compare_exchange(c, n, order(s, at), order(f, at))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new(Default::default())
            }
        }
    };
}

macro_rules! atomic_int {
    ($name:ident, $t:ty) => {
        atomic!($name, $t);

        impl $name {
            /// Fetch-add.
            #[track_caller]
            pub fn fetch_add(&self, v: $t, o: Ordering) -> $t {
                self.0.fetch_add(v, order(o, Location::caller()))
            }
            /// Fetch-sub.
            #[track_caller]
            pub fn fetch_sub(&self, v: $t, o: Ordering) -> $t {
                self.0.fetch_sub(v, order(o, Location::caller()))
            }
        }
    };
}

atomic!(AtomicBool, bool);
atomic_int!(AtomicU32, u32);
atomic_int!(AtomicU64, u64);
atomic_int!(AtomicUsize, usize);
atomic_int!(AtomicIsize, isize);

/// loom's `AtomicPtr` under the firmware's name, with the firmware's `const fn new` (RCU's list
/// head is built in a `const fn`): the loom atomic is created at its first access, inside the
/// execution that uses it. loom counts that creation as a write, so a model accesses the pointer
/// once before other threads share it.
pub struct AtomicPtr<T> {
    init: *mut T,
    cell: std::sync::OnceLock<loom::sync::atomic::AtomicPtr<T>>,
}

// SAFETY: `init` is a pointer value only copied into the loom atomic (never dereferenced here),
// as `core::sync::atomic::AtomicPtr` is Send and Sync for any T.
unsafe impl<T> Send for AtomicPtr<T> {}
// SAFETY: as Send.
unsafe impl<T> Sync for AtomicPtr<T> {}

impl<T> AtomicPtr<T> {
    /// An atomic pointer holding `p`.
    pub const fn new(p: *mut T) -> Self {
        AtomicPtr { init: p, cell: std::sync::OnceLock::new() }
    }

    fn get(&self) -> &loom::sync::atomic::AtomicPtr<T> {
        self.cell.get_or_init(|| loom::sync::atomic::AtomicPtr::new(self.init))
    }

    /// The value, with exclusive access (a later access creates the loom atomic afresh).
    pub fn get_mut(&mut self) -> &mut *mut T {
        if let Some(a) = self.cell.take() {
            self.init = a.into_inner();
        }
        &mut self.init
    }

    /// Load.
    #[track_caller]
    pub fn load(&self, o: Ordering) -> *mut T {
        self.get().load(order(o, Location::caller()))
    }

    /// Store.
    #[track_caller]
    pub fn store(&self, v: *mut T, o: Ordering) {
        self.get().store(v, order(o, Location::caller()))
    }

    /// Swap.
    #[track_caller]
    pub fn swap(&self, v: *mut T, o: Ordering) -> *mut T {
        self.get().swap(v, order(o, Location::caller()))
    }

    /// Compare and exchange.
    #[track_caller]
    pub fn compare_exchange(&self, c: *mut T, n: *mut T, s: Ordering, f: Ordering) -> Result<*mut T, *mut T> {
        let at = Location::caller();
        self.get().compare_exchange(c, n, order(s, at), order(f, at))
    }
}

/// The firmware's array of atomics (`[const { T::new(v) }; N]` there): built at run time,
/// since loom's atomics have no `const` constructor.
#[macro_export]
macro_rules! atomic_array {
    ($t:ident::new($v:expr); $n:expr) => {
        core::array::from_fn(|_| $t::new($v))
    };
}

atomic_int!(AtomicI64, i64);

impl AtomicI64 {
    /// Compare and exchange, weak (loom's never fails spuriously).
    #[track_caller]
    pub fn compare_exchange_weak(&self, c: i64, n: i64, s: Ordering, f: Ordering) -> Result<i64, i64> {
        let at = Location::caller();
        self.0.compare_exchange_weak(c, n, order(s, at), order(f, at))
    }
}
