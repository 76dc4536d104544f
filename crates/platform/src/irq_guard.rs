//! [`IrqGuard`]: interrupts masked for a scope, over the machine's `local_irq_save` and
//! `local_irq_restore` (one definition for the AArch64 and the host machines).

use crate::arch::{local_irq_restore, local_irq_save};

/// Masks interrupts for its lifetime and restores the previous state on drop.
pub struct IrqGuard(u64);

impl IrqGuard {
    /// Masks interrupts on this core.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline(always)]
    pub fn new() -> Self {
        IrqGuard(local_irq_save())
    }
}

impl Default for IrqGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrqGuard {
    #[inline(always)]
    fn drop(&mut self) {
        local_irq_restore(self.0);
    }
}
