//! The live web display (`seraph-display`) on a machine: the framebuffer
//! with the hypervisor's dirty log as its frame source, the PS/2 keyboard,
//! COM1 and the power button as its input, COM1/PRINT output as its
//! console.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use seraph_display::{Dirty, DisplayFeed, FrameSource, Geometry, InputSink, SerialPipeWriter};
use seraph_hypervisor::DirtyLog;
use seraph_memory::layout;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::devices::lock;
use crate::stop::{StopHandle, StopReason};

/// The framebuffer as the display reads it.
pub(crate) struct FramebufferSource {
    pub(crate) mem: GuestMemoryMmap,
    pub(crate) geometry: Geometry,
    pub(crate) dirty: Option<Arc<dyn DirtyLog>>,
}

impl FrameSource for FramebufferSource {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        let len = u64::from(self.geometry.stride) * u64::from(self.geometry.height);
        let ok = (offset as u64)
            .checked_add(buf.len() as u64)
            .is_some_and(|end| end <= len)
            && self
                .mem
                .read_slice(buf, GuestAddress(layout::FRAMEBUFFER_BASE + offset as u64))
                .is_ok();
        if !ok {
            buf.fill(0);
        }
    }

    fn take_dirty(&self) -> Dirty {
        match self.dirty.as_ref().map(|d| d.take()) {
            Some(Ok(pages)) if pages.iter().all(|&w| w == 0) => Dirty::Clean,
            Some(Ok(pages)) => Dirty::Pages(pages),
            _ => Dirty::Unknown,
        }
    }
}

/// Where viewers' keys, console typing and the power button go.
pub(crate) struct MachineInput {
    pub(crate) keyboard: Option<Arc<Mutex<seraph_ps2::I8042>>>,
    pub(crate) serial: SerialPipeWriter,
    pub(crate) stop: StopHandle,
}

impl InputSink for MachineInput {
    fn key(&self, code: &str, pressed: bool) {
        if let Some(keyboard) = &self.keyboard {
            lock(keyboard).key_event(code, pressed);
        }
    }

    fn serial_input(&self, bytes: &[u8]) {
        self.serial.push(bytes);
    }

    fn power_off(&self) {
        self.stop.stop(StopReason::PowerOff);
    }
}

/// The display's console feed, connected once the server runs.
pub(crate) type FeedSlot = Arc<OnceLock<DisplayFeed>>;

/// Writes to an optional sink and to the display's console feed.
pub(crate) struct Tee {
    pub(crate) first: Option<Box<dyn Write + Send>>,
    pub(crate) feed: FeedSlot,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(feed) = self.feed.get() {
            feed.console(buf);
        }
        match self.first.as_mut() {
            Some(first) => first.write_all(buf).map(|()| buf.len()),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.first.as_mut().map_or(Ok(()), |f| f.flush())
    }
}
