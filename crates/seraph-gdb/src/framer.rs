//! A packet filter in front of gdbstub: it frames the client's bytes,
//! checks checksums (a bad one is NAKed, as the protocol says), drops
//! stray bytes, clamps huge memory reads and answers malformed packets
//! itself with an `E` reply, so that what reaches gdbstub is well formed
//! (gdbstub ends the session on a malformed packet).

/// Largest packet body gdbstub's 4096-byte buffer holds (`$`, `#` and the
/// two checksum digits take the rest).
pub(crate) const MAX_BODY: usize = PACKET_BUFFER - 4;
/// gdbstub's packet buffer size, advertised to gdb as `PacketSize`.
pub(crate) const PACKET_BUFFER: usize = 4096;
/// Largest `m` read answered: its hex reply fits the packet size.
pub(crate) const MAX_READ: u64 = 2000;

/// What the filter makes of the client's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Bytes for gdbstub: a whole, valid packet or a Ctrl-C (0x03).
    Forward(Vec<u8>),
    /// Bytes the server writes back itself (an ack or NAK and an error reply).
    Reply(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Body,
    Sum1,
    Sum2,
}

/// The filter's state between reads.
#[derive(Debug)]
pub(crate) struct Framer {
    state: State,
    body: Vec<u8>,
    overflow: bool,
    /// Checksum of the whole body, including bytes past `MAX_BODY`.
    running: u8,
    sum: [u8; 2],
    /// The client switched the acks off (`QStartNoAckMode`).
    pub no_ack: bool,
    /// Number of registers' bytes in a `G` packet (its hex length is twice this).
    g_bytes: usize,
}

/// Frames `body` as `$body#xx`.
pub(crate) fn packet(body: &[u8]) -> Vec<u8> {
    let sum = body.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(b'$');
    out.extend_from_slice(body);
    out.extend_from_slice(format!("#{sum:02x}").as_bytes());
    out
}

fn hex_value(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let s = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(s, 16).ok()
}

fn is_hex(digits: &[u8]) -> bool {
    digits.iter().all(u8::is_ascii_hexdigit)
}

/// Splits `s` at the first `sep`.
fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = s.iter().position(|&b| b == sep)?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// EINVAL, as gdbstub writes it.
const EINVAL: &[u8] = b"E16";

impl Framer {
    /// A filter for registers of `g_bytes` bytes.
    pub fn new(g_bytes: usize) -> Framer {
        Framer {
            state: State::Idle,
            body: Vec::new(),
            overflow: false,
            running: 0,
            sum: [0; 2],
            no_ack: false,
            g_bytes,
        }
    }

    /// Takes one byte from the client; complete frames go to `out`.
    pub fn push(&mut self, byte: u8, out: &mut Vec<Frame>) {
        match self.state {
            State::Idle => match byte {
                b'$' => {
                    self.body.clear();
                    self.overflow = false;
                    self.running = 0;
                    self.state = State::Body;
                }
                0x03 => out.push(Frame::Forward(vec![0x03])),
                // Acks need nothing; a NAK would make gdbstub give up, and
                // anything else outside a packet is noise.
                _ => {}
            },
            State::Body => match byte {
                b'#' => self.state = State::Sum1,
                // A `$` inside a body starts a new packet (the old one was cut).
                b'$' => {
                    self.body.clear();
                    self.overflow = false;
                    self.running = 0;
                }
                _ => {
                    self.running = self.running.wrapping_add(byte);
                    if self.body.len() < MAX_BODY {
                        self.body.push(byte);
                    } else {
                        self.overflow = true;
                    }
                }
            },
            State::Sum1 => {
                self.sum[0] = byte;
                self.state = State::Sum2;
            }
            State::Sum2 => {
                self.sum[1] = byte;
                self.state = State::Idle;
                self.finish(out);
            }
        }
    }

    fn ack(&self) -> Vec<u8> {
        if self.no_ack { Vec::new() } else { vec![b'+'] }
    }

    fn error_reply(&self, body: &[u8]) -> Frame {
        let mut out = self.ack();
        out.extend_from_slice(&packet(body));
        Frame::Reply(out)
    }

    fn finish(&mut self, out: &mut Vec<Frame>) {
        if hex_value(&self.sum).and_then(|v| u8::try_from(v).ok()) != Some(self.running) {
            if !self.no_ack {
                out.push(Frame::Reply(vec![b'-']));
            }
            return;
        }
        if self.overflow {
            out.push(self.error_reply(EINVAL));
            return;
        }
        match self.sanitize() {
            Some(body) => {
                // Acks stop after this packet's own `+`.
                self.no_ack |= body == b"QStartNoAckMode";
                out.push(Frame::Forward(packet(&body)));
            }
            None => out.push(self.error_reply(EINVAL)),
        }
    }

    /// The packet body to forward (possibly rewritten), or `None` for an
    /// `E` reply.
    fn sanitize(&self) -> Option<Vec<u8>> {
        let body = self.body.as_slice();
        let (&kind, args) = body.split_first()?;
        match kind {
            b'm' => {
                let (addr, len) = split_once(args, b',')?;
                let addr = hex_value(addr)?;
                if len.is_empty() || !is_hex(len) {
                    return None;
                }
                // Any length beyond 16 digits is "huge": clamp it like the rest.
                let len = hex_value(len).unwrap_or(u64::MAX).min(MAX_READ);
                // Never past the top of the address space.
                let len = len.min((u64::MAX - addr).saturating_add(1));
                Some(format!("m{addr:x},{len:x}").into_bytes())
            }
            b'M' => {
                let (addr, rest) = split_once(args, b',')?;
                let (len, data) = split_once(rest, b':')?;
                hex_value(addr)?;
                let len = hex_value(len)?;
                (is_hex(data) && len.checked_mul(2)? == data.len() as u64).then(|| body.to_vec())
            }
            b'X' => {
                let (addr, rest) = split_once(args, b',')?;
                let (len, _) = split_once(rest, b':')?;
                hex_value(addr)?;
                hex_value(len)?;
                Some(body.to_vec())
            }
            b'Z' | b'z' => {
                let (t, rest) = split_once(args, b',')?;
                let (addr, kind) = split_once(rest, b',')?;
                let kind = kind.split(|&b| b == b';').next()?;
                if !matches!(t, [b'0'..=b'4']) {
                    return None;
                }
                hex_value(addr)?;
                hex_value(kind)?;
                Some(body.to_vec())
            }
            b'G' => {
                let ok = args.len() == 2 * self.g_bytes
                    && args.iter().all(|b| b.is_ascii_hexdigit() || *b == b'x');
                // Unavailable registers come back as `xx`: they are ignored.
                ok.then(|| {
                    let mut v = body.to_vec();
                    v.iter_mut().filter(|b| **b == b'x').for_each(|b| *b = b'0');
                    v
                })
            }
            b'p' => (hex_value(args)? <= u64::from(u32::MAX)).then(|| body.to_vec()),
            b'P' => {
                let (reg, value) = split_once(args, b'=')?;
                let ok = hex_value(reg)? <= u64::from(u32::MAX)
                    && !value.is_empty()
                    && value.len() % 2 == 0
                    && is_hex(value);
                ok.then(|| body.to_vec())
            }
            _ => Some(body.to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut Framer, bytes: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        for &b in bytes {
            f.push(b, &mut out);
        }
        out
    }

    #[test]
    fn valid_packets_pass_and_bad_checksums_are_naked() {
        let mut f = Framer::new(8);
        assert_eq!(
            feed(&mut f, &packet(b"g")),
            vec![Frame::Forward(packet(b"g"))]
        );
        assert_eq!(feed(&mut f, b"$g#00"), vec![Frame::Reply(b"-".to_vec())]);
        assert_eq!(feed(&mut f, b"$g#zz"), vec![Frame::Reply(b"-".to_vec())]);
        assert_eq!(
            feed(&mut f, b"+-garbage\x03"),
            vec![Frame::Forward(vec![3])]
        );
    }

    #[test]
    fn huge_reads_are_clamped_and_malformed_ones_refused() {
        let mut f = Framer::new(8);
        let out = feed(&mut f, &packet(b"m1000,ffffffffffffffffffff"));
        assert_eq!(out, vec![Frame::Forward(packet(b"m1000,7d0"))]);
        let out = feed(&mut f, &packet(b"mffffffffffffffff,10"));
        assert_eq!(out, vec![Frame::Forward(packet(b"mffffffffffffffff,1"))]);
        let refused = Frame::Reply([b"+".as_slice(), &packet(b"E16")].concat());
        for bad in [
            b"m11112222333344445,1".as_slice(),
            b"m1000",
            b"m1000,zz",
            b"M1000,2:41",
            b"M1000,1:zz",
            b"Z9,1000,1",
            b"Z0,1000",
            b"G0011",
            b"pzz",
            b"P10=1",
        ] {
            assert_eq!(feed(&mut f, &packet(bad)), vec![refused.clone()], "{bad:?}");
        }
    }

    #[test]
    fn oversized_packets_are_refused_and_no_ack_mode_is_followed() {
        let mut f = Framer::new(8);
        let big = vec![b'q'; MAX_BODY + 10];
        let out = feed(&mut f, &packet(&big));
        assert_eq!(
            out,
            vec![Frame::Reply([b"+".as_slice(), &packet(b"E16")].concat())]
        );
        feed(&mut f, &packet(b"QStartNoAckMode"));
        assert!(f.no_ack);
        assert_eq!(feed(&mut f, b"$g#00"), vec![]);
        assert_eq!(
            feed(&mut f, &packet(b"G")),
            vec![Frame::Reply(packet(b"E16"))]
        );
        let g = packet(b"G00112233445566xx");
        assert_eq!(
            feed(&mut f, &g),
            vec![Frame::Forward(packet(b"G0011223344556600"))]
        );
    }
}
