//! The UART as a bus device.

use std::io::Write;

use seraph_bus::BusDevice;
use vm_superio::serial::NoEvents;

use crate::error::SerialError;
use crate::irq::SerialIrq;
use crate::output::{OutputWriter, SerialOutput};

/// First port of COM1.
pub const COM1_BASE: u64 = 0x3F8;

/// Ports COM1 occupies: 0x3F8-0x3FF.
pub const COM1_LEN: u64 = 8;

/// The ISA interrupt line of COM1.
pub const COM1_IRQ: u32 = 4;

/// How much recent output [`Serial::new`] keeps for [`Serial::captured`]: 64 KiB.
pub const DEFAULT_CAPTURE_LIMIT: usize = 64 * 1024;

/// What a read of a port outside the UART's 8 returns (an open ISA bus).
const OPEN_BUS: u8 = 0xFF;

/// A 16550 UART on 8 ports, its registers emulated by `vm_superio::Serial`.
pub struct Serial {
    uart: vm_superio::Serial<SerialIrq, NoEvents, OutputWriter>,
    irq: SerialIrq,
}

impl std::fmt::Debug for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serial")
            .field("bytes_written", &self.bytes_written())
            .field("irq_pending", &self.irq.is_pending())
            .finish_non_exhaustive()
    }
}

impl Serial {
    /// A UART writing to `output`, keeping the last
    /// [`DEFAULT_CAPTURE_LIMIT`] bytes of output (none for
    /// [`SerialOutput::None`]). Errors if an output file cannot be opened.
    pub fn new(output: SerialOutput) -> Result<Self, SerialError> {
        Self::with_capture_limit(output, DEFAULT_CAPTURE_LIMIT)
    }

    /// Like [`Serial::new`], keeping the last `capture_limit` bytes
    /// ([`SerialOutput::None`] keeps none whatever the limit).
    pub fn with_capture_limit(
        output: SerialOutput,
        capture_limit: usize,
    ) -> Result<Self, SerialError> {
        let sink = output.open()?;
        let limit = if output == SerialOutput::None {
            0
        } else {
            capture_limit
        };
        Ok(Self::build(sink, limit))
    }

    /// A UART writing to any `writer` (buffered to lines like stdout),
    /// keeping the last `capture_limit` bytes.
    pub fn with_writer(writer: Box<dyn Write + Send>, capture_limit: usize) -> Self {
        Self::build(Some(writer), capture_limit)
    }

    fn build(sink: Option<Box<dyn Write + Send>>, capture_limit: usize) -> Self {
        let irq = SerialIrq::new();
        let uart = vm_superio::Serial::new(irq.clone(), OutputWriter::new(sink, capture_limit));
        Self { uart, irq }
    }

    /// The most recent output (up to the capture limit), oldest first.
    pub fn captured(&self) -> Vec<u8> {
        self.uart.writer().capture().to_vec()
    }

    /// Forgets the captured output (counters are kept).
    pub fn clear_captured(&mut self) {
        self.uart.writer_mut().capture_mut().clear();
    }

    /// Bytes the guest has transmitted in total, whether or not the sink
    /// took them.
    pub fn bytes_written(&self) -> u64 {
        self.uart.writer().bytes_written()
    }

    /// Times writing to the sink failed.
    pub fn sink_errors(&self) -> u64 {
        self.uart.writer().sink_errors()
    }

    /// Bytes lost because writing to the sink failed.
    pub fn bytes_dropped(&self) -> u64 {
        self.uart.writer().bytes_dropped()
    }

    /// Writes buffered output (an unfinished line) to the sink. The VMM
    /// calls this at the end of a run; dropping the `Serial` does it too.
    pub fn flush(&mut self) {
        self.uart.writer_mut().flush_sink();
    }

    /// True if the UART requested IRQ 4 since the last call; clears it.
    pub fn take_irq(&self) -> bool {
        self.irq.take()
    }

    /// Wires the UART's interrupt output to `line` (COM1: IRQ4).
    pub fn connect_irq(&self, line: seraph_irq::IrqLine) {
        self.irq.connect(line);
    }

    /// True if the guest enabled the receive-data interrupt (IER bit 0), so
    /// a byte put in the receive FIFO raises the UART's interrupt.
    pub fn receive_interrupt_enabled(&mut self) -> bool {
        // IER is register 1 with DLAB (LCR bit 7) clear; reading LCR and
        // IER has no side effects. With DLAB set IER cannot be seen: assume
        // enabled, the answer that never ends a run too early.
        self.uart.read(3) & 0x80 != 0 || self.uart.read(1) & 1 != 0
    }

    /// A handle on the interrupt line that can be polled without this device.
    pub fn irq_line(&self) -> SerialIrq {
        self.irq.clone()
    }

    /// Puts `bytes` in the receive FIFO for the guest to read (requesting
    /// the receive interrupt if the guest enabled it). Returns how many fit:
    /// the FIFO holds 64 bytes.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        // A full FIFO is the only error left (the trigger cannot fail).
        self.uart.enqueue_raw_bytes(bytes).unwrap_or(0)
    }

    /// Free space in the receive FIFO, in bytes.
    pub fn input_capacity(&self) -> usize {
        self.uart.fifo_capacity()
    }

    #[cfg(test)]
    pub(crate) fn pending_output(&self) -> usize {
        self.uart.writer().pending_len()
    }
}

/// The register offset of byte `i` of an access at `offset`, if inside the UART.
fn register(offset: u64, i: usize) -> Option<u8> {
    let at = offset.checked_add(u64::try_from(i).ok()?)?;
    u8::try_from(at).ok().filter(|&r| u64::from(r) < COM1_LEN)
}

impl BusDevice for Serial {
    /// Reads each byte of the access from consecutive registers (a 16-bit
    /// `in` at 0x3F8 reads RBR then IER, as an ISA bus splits it); bytes
    /// beyond the 8 registers read 0xFF.
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = register(offset, i).map_or(OPEN_BUS, |r| self.uart.read(r));
        }
    }

    /// Writes each byte of the access to consecutive registers; bytes
    /// beyond the 8 registers are ignored.
    fn write(&mut self, offset: u64, data: &[u8]) {
        for (i, &byte) in data.iter().enumerate() {
            if let Some(r) = register(offset, i) {
                // Our writer and trigger never fail, and a full FIFO only
                // arises on input: nothing here can be an error.
                let _ = self.uart.write(r, byte);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    // 16550 register offsets and bits (PC16550D datasheet).
    const THR: u64 = 0;
    const DLL: u64 = 0;
    const IER: u64 = 1;
    const DLM: u64 = 1;
    const IIR: u64 = 2;
    const FCR: u64 = 2;
    const LCR: u64 = 3;
    const MCR: u64 = 4;
    const LSR: u64 = 5;
    const SCR: u64 = 7;
    const LSR_DR: u8 = 0x01;
    const LSR_THRE: u8 = 0x20;
    const LSR_TEMT: u8 = 0x40;

    fn out(serial: &mut Serial, offset: u64, value: u8) {
        serial.write(offset, &[value]);
    }

    fn inb(serial: &mut Serial, offset: u64) -> u8 {
        let mut b = [0];
        serial.read(offset, &mut b);
        b[0]
    }

    /// The usual polled-driver setup: no interrupts, 38400 baud (divisor 3),
    /// 8N1, FIFOs on and cleared, DTR | RTS | OUT2.
    fn init_16550(serial: &mut Serial) {
        out(serial, IER, 0x00);
        out(serial, LCR, 0x80);
        out(serial, DLL, 0x03);
        out(serial, DLM, 0x00);
        out(serial, LCR, 0x03);
        out(serial, FCR, 0xC7);
        out(serial, MCR, 0x0B);
    }

    fn print(serial: &mut Serial, text: &[u8]) {
        for &b in text {
            while inb(serial, LSR) & LSR_THRE == 0 {}
            out(serial, THR, b);
        }
    }

    /// A sink recording each write call, optionally failing every one.
    #[derive(Clone, Default)]
    struct Recorder {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        fail: bool,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.fail {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            self.writes.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Recorder {
        fn writes(&self) -> Vec<Vec<u8>> {
            self.writes.lock().unwrap().clone()
        }
    }

    #[test]
    fn init_sequence_then_text_is_captured() {
        let mut serial = Serial::new(SerialOutput::Capture).unwrap();
        init_16550(&mut serial);
        print(&mut serial, b"Seraph OS\r\n");
        assert_eq!(serial.captured(), b"Seraph OS\r\n");
        assert_eq!(serial.bytes_written(), 11);
        assert_eq!(inb(&mut serial, LCR), 0x03);
        assert_eq!(inb(&mut serial, MCR), 0x0B);
    }

    #[test]
    fn lsr_reports_transmitter_empty() {
        let mut serial = Serial::new(SerialOutput::Capture).unwrap();
        assert_eq!(inb(&mut serial, LSR), LSR_THRE | LSR_TEMT);
        out(&mut serial, THR, b'x');
        assert_eq!(inb(&mut serial, LSR), LSR_THRE | LSR_TEMT);
    }

    #[test]
    fn divisor_latch_access_emits_nothing() {
        let mut serial = Serial::new(SerialOutput::Capture).unwrap();
        out(&mut serial, LCR, 0x80);
        out(&mut serial, DLL, 0x01);
        out(&mut serial, DLM, 0x02);
        assert_eq!(inb(&mut serial, DLL), 0x01);
        assert_eq!(inb(&mut serial, DLM), 0x02);
        assert!(serial.captured().is_empty());
        assert_eq!(serial.bytes_written(), 0);
        out(&mut serial, LCR, 0x03);
        // With DLAB clear offset 1 is IER again, still 0.
        assert_eq!(inb(&mut serial, IER), 0x00);
        out(&mut serial, THR, b'A');
        assert_eq!(serial.captured(), b"A");
    }

    #[test]
    fn scratch_register_keeps_its_value() {
        let mut serial = Serial::new(SerialOutput::Capture).unwrap();
        out(&mut serial, SCR, 0x5A);
        assert_eq!(inb(&mut serial, SCR), 0x5A);
    }

    #[test]
    fn capture_is_bounded() {
        let limit = 4096;
        let mut serial = Serial::with_capture_limit(SerialOutput::Capture, limit).unwrap();
        let total = 1024 * 1024;
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        for &b in &data {
            out(&mut serial, THR, b);
        }
        assert_eq!(serial.bytes_written(), total as u64);
        assert_eq!(serial.captured(), &data[total - limit..]);
        let allocated = serial.uart.writer().capture().allocated();
        assert!(allocated <= 2 * limit, "capture holds {allocated} bytes");
        assert_eq!(serial.pending_output(), 0);
    }

    #[test]
    fn default_capture_is_64_kib() {
        let mut serial = Serial::new(SerialOutput::Capture).unwrap();
        for i in 0..(DEFAULT_CAPTURE_LIMIT + 10) {
            out(&mut serial, THR, i as u8);
        }
        let captured = serial.captured();
        assert_eq!(captured.len(), 64 * 1024);
        assert_eq!(captured[0], 10);
    }

    #[test]
    fn output_none_keeps_nothing_but_counts() {
        let mut serial = Serial::new(SerialOutput::None).unwrap();
        print(&mut serial, b"hello\n");
        assert!(serial.captured().is_empty());
        assert_eq!(serial.bytes_written(), 6);
    }

    fn temp_file(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("seraph-serial-{name}-{}", std::process::id()))
    }

    #[test]
    fn file_sink_gets_exactly_the_bytes() {
        let path = temp_file("file");
        std::fs::write(&path, b"old contents to truncate").unwrap();
        let mut serial = Serial::new(SerialOutput::File(path.clone())).unwrap();
        // Every byte value, including NUL and a trailing unterminated line.
        let data: Vec<u8> = (0..=255u8).chain(*b"line\nlast").collect();
        print(&mut serial, &data);
        // Whole lines are already written; the unterminated tail waits.
        let before_flush = std::fs::read(&path).unwrap();
        assert_eq!(before_flush, &data[..data.len() - 4]);
        serial.flush();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(serial.captured(), data);
        drop(serial);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn dropping_flushes_the_file() {
        let path = temp_file("drop");
        let mut serial = Serial::new(SerialOutput::File(path.clone())).unwrap();
        print(&mut serial, b"no newline");
        drop(serial);
        assert_eq!(std::fs::read(&path).unwrap(), b"no newline");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn unopenable_file_names_the_path() {
        let path = temp_file("missing-dir").join("serial.log");
        let err = Serial::new(SerialOutput::File(path.clone())).unwrap_err();
        assert!(matches!(&err, SerialError::OpenOutput { path: p, .. } if *p == path));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn sink_is_written_a_line_at_a_time() {
        let sink = Recorder::default();
        let mut serial = Serial::with_writer(Box::new(sink.clone()), 1024);
        print(&mut serial, b"hello\nworld\n");
        print(&mut serial, b"tail");
        assert_eq!(sink.writes(), [b"hello\n".to_vec(), b"world\n".to_vec()]);
        serial.flush();
        serial.flush();
        assert_eq!(sink.writes().len(), 3);
        assert_eq!(sink.writes()[2], b"tail");
    }

    #[test]
    fn long_lines_are_written_in_bounded_pieces() {
        let sink = Recorder::default();
        let mut serial = Serial::with_writer(Box::new(sink.clone()), 16);
        let data = vec![b'x'; 10_000];
        print(&mut serial, &data);
        let writes = sink.writes();
        assert_eq!(writes.len(), 2);
        assert!(writes.iter().all(|w| w.len() == crate::SINK_BUFFER_LIMIT));
        assert_eq!(serial.pending_output(), 10_000 - 2 * 4096);
        serial.flush();
        assert_eq!(sink.writes().concat().len(), 10_000);
    }

    #[test]
    fn failing_sink_drops_output_and_counts() {
        let sink = Recorder {
            fail: true,
            ..Recorder::default()
        };
        let mut serial = Serial::with_writer(Box::new(sink), 1024);
        init_16550(&mut serial);
        print(&mut serial, b"one\ntwo\nthr");
        serial.flush();
        assert_eq!(serial.sink_errors(), 3);
        assert_eq!(serial.bytes_dropped(), 11);
        assert_eq!(serial.bytes_written(), 11);
        // The guest is unaffected and the capture still has everything.
        assert_eq!(serial.captured(), b"one\ntwo\nthr");
        assert_eq!(inb(&mut serial, LSR), LSR_THRE | LSR_TEMT);
    }

    #[test]
    fn thr_empty_interrupt_when_enabled() {
        let mut serial = Serial::new(SerialOutput::Capture).unwrap();
        let line = serial.irq_line();
        init_16550(&mut serial);
        out(&mut serial, THR, b'a');
        assert!(!serial.take_irq(), "no interrupt with IER = 0");
        // Enabling THRE interrupts raises one at once: THR is empty.
        out(&mut serial, IER, 0x02);
        assert!(serial.take_irq());
        assert!(!serial.take_irq());
        // IIR: THR empty (0x02) with FIFO bits (0xC0); reading acknowledges.
        assert_eq!(inb(&mut serial, IIR), 0xC2);
        assert_eq!(inb(&mut serial, IIR), 0xC1);
        out(&mut serial, THR, b'b');
        assert!(line.take());
        assert_eq!(line.requests(), 2);
        assert_eq!(serial.captured(), b"ab");
    }

    #[test]
    fn input_reaches_the_receive_register() {
        let mut serial = Serial::new(SerialOutput::Capture).unwrap();
        out(&mut serial, IER, 0x01);
        assert_eq!(serial.enqueue_input(b"hi"), 2);
        assert!(serial.take_irq());
        assert_eq!(inb(&mut serial, LSR) & LSR_DR, LSR_DR);
        assert_eq!(inb(&mut serial, 0), b'h');
        assert_eq!(inb(&mut serial, 0), b'i');
        assert_eq!(inb(&mut serial, LSR) & LSR_DR, 0);
        assert_eq!(serial.input_capacity(), 64);
        assert_eq!(serial.enqueue_input(&[b'z'; 100]), 64);
        assert_eq!(serial.enqueue_input(b"more"), 0);
        assert_eq!(serial.enqueue_input(b""), 0);
    }

    #[test]
    fn wide_and_out_of_range_accesses_are_safe() {
        let mut serial = Serial::new(SerialOutput::Capture).unwrap();
        // A 16-bit read at LCR covers LCR and MCR.
        let mut two = [0u8; 2];
        serial.read(LCR, &mut two);
        assert_eq!(two, [0x03, 0x08]);
        // Bytes past the last register read as an open bus.
        let mut four = [0u8; 4];
        serial.read(6, &mut four);
        assert_eq!(four[2..], [0xFF, 0xFF]);
        serial.read(u64::MAX, &mut four);
        assert_eq!(four, [0xFF; 4]);
        serial.write(u64::MAX - 1, &[1, 2, 3]);
        serial.write(8, b"ignored");
        assert!(serial.captured().is_empty());
        // A 16-bit write at THR sends the low byte and sets IER from the high.
        serial.write(THR, &[b'Q', 0x00]);
        assert_eq!(serial.captured(), b"Q");
    }

    #[test]
    fn works_on_the_port_bus() {
        let serial = Arc::new(Mutex::new(Serial::new(SerialOutput::Capture).unwrap()));
        let mut bus = seraph_bus::Bus::new();
        bus.insert("com1", COM1_BASE, COM1_LEN, serial.clone())
            .unwrap();
        for &b in b"ok" {
            assert!(bus.write(0x3F8, &[b]).is_some());
        }
        let mut lsr = [0];
        assert!(bus.read(0x3FD, &mut lsr).is_some());
        assert_eq!(lsr[0], LSR_THRE | LSR_TEMT);
        assert_eq!(serial.lock().unwrap().captured(), b"ok");
    }
}
