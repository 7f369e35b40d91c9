//! The `--display web[,addr=ADDR:PORT]` option.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// Why a `--display` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplaySpecError {
    /// The value is empty.
    #[error("empty --display value (expected web[,addr=ADDR:PORT])")]
    Empty,
    /// The display kind is not `web`.
    #[error("unknown display `{0}` (expected web[,addr=ADDR:PORT])")]
    UnknownKind(String),
    /// An option is not `key=value`.
    #[error("display option `{0}` is not key=value")]
    NotKeyValue(String),
    /// An option key is unknown.
    #[error("unknown display option `{0}` (known: addr)")]
    UnknownOption(String),
    /// An option appears twice.
    #[error("display option `{0}` given twice")]
    Duplicate(String),
    /// The address does not parse as ADDR:PORT.
    #[error("bad display address `{0}` (expected ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)")]
    BadAddress(String),
}

/// A parsed `--display` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplaySpec {
    /// Where the server listens: 127.0.0.1 on a free port unless given.
    pub addr: SocketAddr,
}

/// The default address: loopback, a port the system picks.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

impl Default for DisplaySpec {
    fn default() -> Self {
        Self { addr: DEFAULT_ADDR }
    }
}

impl std::str::FromStr for DisplaySpec {
    type Err = DisplaySpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_display_spec(s)
    }
}

/// Parses `web[,addr=ADDR:PORT]` (ADDR an IPv4 address or a bracketed IPv6 one).
pub fn parse_display_spec(value: &str) -> Result<DisplaySpec, DisplaySpecError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DisplaySpecError::Empty);
    }
    let mut parts = value.split(',');
    let kind = parts.next().unwrap_or_default();
    if kind != "web" {
        return Err(DisplaySpecError::UnknownKind(kind.to_owned()));
    }
    let mut spec = DisplaySpec::default();
    let mut have_addr = false;
    for part in parts {
        let Some((key, val)) = part.split_once('=') else {
            return Err(DisplaySpecError::NotKeyValue(part.to_owned()));
        };
        match key {
            "addr" => {
                if have_addr {
                    return Err(DisplaySpecError::Duplicate(key.to_owned()));
                }
                have_addr = true;
                spec.addr = val
                    .parse()
                    .map_err(|_| DisplaySpecError::BadAddress(val.to_owned()))?;
            }
            _ => return Err(DisplaySpecError::UnknownOption(key.to_owned())),
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_display_spec("web"), Ok(DisplaySpec::default()));
        assert_eq!(
            parse_display_spec("web,addr=0.0.0.0:8080").map(|s| s.addr.to_string()),
            Ok("0.0.0.0:8080".to_owned())
        );
        assert_eq!(
            "web,addr=[::1]:9000"
                .parse::<DisplaySpec>()
                .map(|s| s.addr.to_string()),
            Ok("[::1]:9000".to_owned())
        );
        assert_eq!(DisplaySpec::default().addr.to_string(), "127.0.0.1:0");
    }

    #[test]
    fn refused_forms() {
        use DisplaySpecError::*;
        assert_eq!(parse_display_spec(""), Err(Empty));
        assert_eq!(parse_display_spec("vnc"), Err(UnknownKind("vnc".into())));
        assert_eq!(
            parse_display_spec("web,addr"),
            Err(NotKeyValue("addr".into()))
        );
        assert_eq!(parse_display_spec("web,"), Err(NotKeyValue(String::new())));
        assert_eq!(
            parse_display_spec("web,port=1"),
            Err(UnknownOption("port".into()))
        );
        assert_eq!(
            parse_display_spec("web,addr=1.2.3.4:1,addr=1.2.3.4:2"),
            Err(Duplicate("addr".into()))
        );
        for bad in ["localhost:80", "1.2.3.4", "::1:80", "1.2.3.4:99999", ""] {
            assert_eq!(
                parse_display_spec(&format!("web,addr={bad}")),
                Err(BadAddress(bad.into()))
            );
        }
    }
}
