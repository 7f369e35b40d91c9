//! Port 0x61 as its own bus entry, sharing the [`Pit`].

use std::sync::{Arc, Mutex, MutexGuard};

use seraph_bus::BusDevice;
use seraph_clock::Clock;

use crate::Pit;

/// Bus adapter for port 0x61 (offset 0); other offsets read 0xFF and ignore writes.
#[derive(Debug)]
pub struct Port61<C> {
    pit: Arc<Mutex<Pit<C>>>,
}

impl<C: Clock> Port61<C> {
    /// An adapter over the PIT that is also on the bus at 0x40-0x43.
    pub fn new(pit: Arc<Mutex<Pit<C>>>) -> Self {
        Self { pit }
    }

    fn pit(&self) -> MutexGuard<'_, Pit<C>> {
        // A poisoned lock still holds a consistent PIT: every method leaves it valid.
        self.pit.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<C: Clock> BusDevice for Port61<C> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = if offset.checked_add(i as u64) == Some(0) {
                self.pit().read_port61()
            } else {
                0xFF
            };
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == 0 {
            if let Some(&value) = data.first() {
                self.pit().write_port61(value);
            }
        }
    }
}
