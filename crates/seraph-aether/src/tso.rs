//! TCP segmentation offload (TSE): one large TCP or UDP frame over IPv4 or
//! IPv6, split into segments of at most MSS payload bytes, each with a copy
//! of the first HDRLEN bytes whose lengths, IPv4 identification, TCP
//! sequence number and flags and checksums are fixed per segment, as the
//! 8254x manual describes for the TCP/IP context and TSE data descriptors.

use crate::MAX_FRAME;
use crate::tx::TxContext;

/// TUCMD: the packet is TCP (clear: UDP).
pub(crate) const TUCMD_TCP: u8 = 1 << 0;
/// TUCMD: the packet is IPv4 (clear: IPv6).
pub(crate) const TUCMD_IP: u8 = 1 << 1;
/// The largest TSO payload accepted. PAYLEN is 20 bits wide, but Linux
/// never sends more than 64 KiB in one TSO frame; more stops the ring.
pub(crate) const MAX_TSO_PAYLOAD: usize = 64 * 1024;
/// Most segments one TSO frame may make: a 64 KiB payload at Linux's
/// smallest MSS (48, `tcp_min_snd_mss`) makes 1366, so a tinier MSS is a
/// guest asking the card to send tens of thousands of frames in one step.
pub(crate) const MAX_TSO_SEGMENTS: usize = 2048;
/// Packet options: insert the IP checksum.
pub(crate) const POPTS_IXSM: u8 = 1 << 0;
/// Packet options: insert the TCP/UDP checksum.
pub(crate) const POPTS_TXSM: u8 = 1 << 1;
/// TCP flags cleared on every segment but the last: FIN and PSH.
const TCP_FIN_PSH: u8 = 0x01 | 0x08;
/// Bytes of an IPv6 header (its payload length excludes them).
const IPV6_HEADER: usize = 40;

/// Why a TSO frame cannot be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TsoError {
    /// The context's MSS is 0.
    ZeroMss,
    /// HDRLEN is beyond the data the descriptors carried.
    ShortFrame,
    /// The payload (or PAYLEN) is over [`MAX_TSO_PAYLOAD`].
    PayloadTooLong,
    /// HDRLEN plus MSS makes a segment over [`MAX_FRAME`].
    SegmentTooLong,
    /// The MSS would cut the payload into more than [`MAX_TSO_SEGMENTS`].
    TooManySegments,
}

/// The folded 16-bit ones' complement sum of big-endian words of `data`
/// plus `extra` (not complemented).
pub(crate) fn ones_sum(data: &[u8], extra: u32) -> u16 {
    let mut sum = data
        .chunks(2)
        .map(|c| match c {
            [a, b] => u64::from(u16::from_be_bytes([*a, *b])),
            [a] => u64::from(*a) << 8,
            _ => 0,
        })
        .fold(u64::from(extra), |a, w| a.wrapping_add(w));
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Stores at `at` the checksum of `frame[start..=end]` (`end` 0: to the
/// end of the frame). Out-of-range offsets do nothing.
pub(crate) fn insert_checksum(frame: &mut [u8], start: usize, end: usize, at: usize) {
    let stop = if end == 0 {
        frame.len()
    } else {
        end.saturating_add(1).min(frame.len())
    };
    let Some(region) = frame.get(start..stop) else {
        return;
    };
    let value = !ones_sum(region, 0);
    put(frame, at, &value.to_be_bytes());
}

/// Writes `bytes` at `at` if they fit inside `frame`.
fn put(frame: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(slot) = frame.get_mut(at..at.saturating_add(bytes.len())) {
        slot.copy_from_slice(bytes);
    }
}

/// Reads the big-endian 16-bit word at `at` (0 outside `data`).
fn get16(data: &[u8], at: usize) -> u16 {
    match data.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// Reads the big-endian 32-bit word at `at` (0 outside `data`).
fn get32(data: &[u8], at: usize) -> u32 {
    match data.get(at..at.saturating_add(4)) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// Checks a TSO frame (`data`: HDRLEN header bytes, then the payload)
/// against the context and returns its segment count.
pub(crate) fn check(data: &[u8], ctx: &TxContext) -> Result<usize, TsoError> {
    if ctx.mss == 0 {
        return Err(TsoError::ZeroMss);
    }
    if ctx.paylen > MAX_TSO_PAYLOAD {
        return Err(TsoError::PayloadTooLong);
    }
    let payload = data
        .len()
        .checked_sub(ctx.hdrlen)
        .ok_or(TsoError::ShortFrame)?;
    if payload > MAX_TSO_PAYLOAD {
        return Err(TsoError::PayloadTooLong);
    }
    if ctx.hdrlen.saturating_add(ctx.mss.min(payload)) > MAX_FRAME {
        return Err(TsoError::SegmentTooLong);
    }
    let segments = payload.div_ceil(ctx.mss).max(1);
    if segments > MAX_TSO_SEGMENTS {
        return Err(TsoError::TooManySegments);
    }
    Ok(segments)
}

/// Splits `data` into segments (see the module docs), handing each to
/// `emit` in order; `popts` selects the checksums inserted. Nothing is
/// emitted unless [`check`] passes. Returns the number of segments.
pub(crate) fn segment(
    data: &[u8],
    ctx: &TxContext,
    popts: u8,
    mut emit: impl FnMut(Vec<u8>),
) -> Result<usize, TsoError> {
    let count = check(data, ctx)?;
    let (header, payload) = data.split_at(ctx.hdrlen.min(data.len()));
    let tcp = ctx.tucmd & TUCMD_TCP != 0;
    let ipv4 = ctx.tucmd & TUCMD_IP != 0;
    let ip_id = get16(header, ctx.ipcss.saturating_add(4));
    let seq = get32(header, ctx.tucss.saturating_add(4));
    let flags_at = ctx.tucss.saturating_add(13);
    let mut chunks = payload.chunks(ctx.mss);
    for i in 0..count {
        let chunk = chunks.next().unwrap_or(&[]);
        let last = i + 1 == count;
        let mut seg = Vec::with_capacity(header.len() + chunk.len());
        seg.extend_from_slice(header);
        seg.extend_from_slice(chunk);
        let len = seg.len();
        if ipv4 {
            let total = len.saturating_sub(ctx.ipcss) as u16;
            put(&mut seg, ctx.ipcss.saturating_add(2), &total.to_be_bytes());
            let id = ip_id.wrapping_add(i as u16);
            put(&mut seg, ctx.ipcss.saturating_add(4), &id.to_be_bytes());
        } else {
            let plen = len.saturating_sub(ctx.ipcss.saturating_add(IPV6_HEADER)) as u16;
            put(&mut seg, ctx.ipcss.saturating_add(4), &plen.to_be_bytes());
        }
        let l4_len = len.saturating_sub(ctx.tucss);
        if tcp {
            let offset = (i * ctx.mss) as u32;
            let s = seq.wrapping_add(offset);
            put(&mut seg, ctx.tucss.saturating_add(4), &s.to_be_bytes());
            if !last {
                if let Some(flags) = seg.get_mut(flags_at) {
                    *flags &= !TCP_FIN_PSH;
                }
            }
        } else {
            put(
                &mut seg,
                ctx.tucss.saturating_add(4),
                &(l4_len as u16).to_be_bytes(),
            );
        }
        if popts & POPTS_IXSM != 0 {
            if ipv4 {
                put(&mut seg, ctx.ipcso, &[0, 0]);
            }
            insert_checksum(&mut seg, ctx.ipcss, ctx.ipcse, ctx.ipcso);
        }
        if popts & POPTS_TXSM != 0 {
            // The driver seeded the field with the pseudo-header sum
            // without the length; each segment adds its own.
            if let Some(region) = seg.get(ctx.tucss..) {
                let mut value = !ones_sum(region, l4_len as u32);
                if !tcp && value == 0 {
                    value = 0xFFFF;
                }
                put(&mut seg, ctx.tucso, &value.to_be_bytes());
            }
        }
        emit(seg);
    }
    Ok(count)
}
