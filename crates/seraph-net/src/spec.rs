//! The `--net` option: `dgram,local=ADDR:PORT,remote=ADDR:PORT[,mac=MAC]`
//! or `tap,ifname=NAME[,mac=MAC]`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::NetError;

/// The default MAC address (02:53:45:52:00:01).
pub const DEFAULT_MAC: [u8; 6] = seraph_aether::DEFAULT_MAC;
/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// Which packet backend a card uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSpec {
    /// One UDP datagram per frame between `local` and `remote` (QEMU's `-netdev dgram`).
    Dgram {
        /// Address this end binds.
        local: SocketAddr,
        /// Address frames go to and the only source accepted.
        remote: SocketAddr,
    },
    /// A host TAP device, created if missing.
    Tap {
        /// The interface name.
        ifname: String,
    },
}

/// One `--net` option: a backend and the card's MAC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSpec {
    /// The backend.
    pub backend: BackendSpec,
    /// The card's MAC address ([`DEFAULT_MAC`] unless `mac=` is given).
    pub mac: [u8; 6],
}

fn bad(spec: &str, why: impl Into<String>) -> NetError {
    NetError::Spec {
        spec: spec.to_string(),
        why: why.into(),
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`): a unicast, non-zero address.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(format!(
            "MAC address {text:?} needs six hex bytes like 02:53:45:52:00:01"
        ));
    }
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(&parts) {
        if part.len() != 2 {
            return Err(format!(
                "MAC address {text:?}: {part:?} is not two hex digits"
            ));
        }
        *slot = u8::from_str_radix(part, 16)
            .map_err(|_| format!("MAC address {text:?}: {part:?} is not hex"))?;
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "MAC address {text:?} is multicast; a card needs a unicast address"
        ));
    }
    if mac == [0; 6] {
        return Err("MAC address 00:00:00:00:00:00 is not usable".into());
    }
    Ok(mac)
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl NetSpec {
    /// Parses the `--net` syntax.
    pub fn parse(spec: &str) -> Result<Self, NetError> {
        let mut fields = spec.split(',');
        let kind = fields.next().unwrap_or_default();
        if kind != "dgram" && kind != "tap" {
            return Err(bad(
                spec,
                format!("unknown backend {kind:?} (dgram or tap)"),
            ));
        }
        let mut local = None;
        let mut remote = None;
        let mut ifname = None;
        let mut mac = None;
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                return Err(bad(spec, format!("{field:?} is not key=value")));
            };
            let slot = match (kind, key) {
                ("dgram", "local") => &mut local,
                ("dgram", "remote") => &mut remote,
                ("tap", "ifname") => &mut ifname,
                (_, "mac") => &mut mac,
                _ => return Err(bad(spec, format!("unknown option {key:?} for {kind:?}"))),
            };
            if slot.replace(value).is_some() {
                return Err(bad(spec, format!("{key} is given twice")));
            }
        }
        let addr = |name: &str, v: Option<&str>| -> Result<SocketAddr, NetError> {
            let v = v.ok_or_else(|| bad(spec, format!("dgram needs {name}=ADDR:PORT")))?;
            v.parse()
                .map_err(|_| bad(spec, format!("{name}={v:?} is not ADDR:PORT")))
        };
        let backend = match kind {
            "dgram" => {
                let local = addr("local", local)?;
                let remote = addr("remote", remote)?;
                if remote.port() == 0 || remote.ip().is_unspecified() {
                    return Err(bad(spec, "remote needs a real address and port"));
                }
                BackendSpec::Dgram { local, remote }
            }
            "tap" => {
                let name = ifname.ok_or_else(|| bad(spec, "tap needs ifname=NAME"))?;
                let valid = !name.is_empty()
                    && name.len() <= MAX_IFNAME
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !valid {
                    return Err(bad(
                        spec,
                        format!("ifname {name:?}: 1-15 characters of A-Z a-z 0-9 - _ ."),
                    ));
                }
                BackendSpec::Tap {
                    ifname: name.to_string(),
                }
            }
            other => {
                return Err(bad(
                    spec,
                    format!("unknown backend {other:?} (dgram or tap)"),
                ));
            }
        };
        let mac = match mac {
            Some(m) => parse_mac(m).map_err(|why| bad(spec, why))?,
            None => DEFAULT_MAC,
        };
        Ok(Self { backend, mac })
    }
}

impl FromStr for NetSpec {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for NetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            BackendSpec::Dgram { local, remote } => {
                write!(f, "dgram,local={local},remote={remote}")?
            }
            BackendSpec::Tap { ifname } => write!(f, "tap,ifname={ifname}")?,
        }
        write!(f, ",mac={}", format_mac(&self.mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dgram_with_and_without_mac() {
        let s = NetSpec::parse("dgram,local=127.0.0.1:5000,remote=127.0.0.1:5001").unwrap();
        assert_eq!(
            s.backend,
            BackendSpec::Dgram {
                local: "127.0.0.1:5000".parse().unwrap(),
                remote: "127.0.0.1:5001".parse().unwrap(),
            }
        );
        assert_eq!(s.mac, [0x02, 0x53, 0x45, 0x52, 0x00, 0x01]);
        let s: NetSpec = "dgram,remote=[::1]:7,local=[::1]:8,mac=02:53:45:52:01:0A"
            .parse()
            .unwrap();
        assert_eq!(s.mac, [0x02, 0x53, 0x45, 0x52, 0x01, 0x0A]);
        assert_eq!(
            s.to_string(),
            "dgram,local=[::1]:8,remote=[::1]:7,mac=02:53:45:52:01:0a"
        );
        assert_eq!(NetSpec::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn tap() {
        let s = NetSpec::parse("tap,ifname=sv-tap0,mac=02-00-00-00-00-07").unwrap();
        assert_eq!(
            s.backend,
            BackendSpec::Tap {
                ifname: "sv-tap0".into()
            }
        );
        assert_eq!(s.mac[5], 7);
    }

    #[test]
    fn errors_name_the_problem() {
        let cases = [
            ("", "unknown backend"),
            ("user", "unknown backend"),
            ("vde,sock=/x", "unknown backend"),
            ("dgram,local=127.0.0.1:1", "remote"),
            ("dgram,remote=127.0.0.1:1", "local"),
            ("dgram,local=127.0.0.1,remote=127.0.0.1:1", "ADDR:PORT"),
            ("dgram,local=127.0.0.1:1,remote=0.0.0.0:5", "real address"),
            ("dgram,local=127.0.0.1:1,remote=127.0.0.1:0", "real address"),
            (
                "dgram,local=1.2.3.4:1,local=1.2.3.4:2,remote=1.2.3.4:3",
                "twice",
            ),
            ("dgram,ifname=x", "unknown option"),
            ("tap", "ifname"),
            ("tap,ifname=", "1-15"),
            ("tap,ifname=averyveryverylongname", "1-15"),
            ("tap,ifname=a/b", "1-15"),
            ("tap,ifname=t0,mac=01:00:00:00:00:01", "multicast"),
            ("tap,ifname=t0,mac=00:00:00:00:00:00", "not usable"),
            ("tap,ifname=t0,mac=02:00:00:00:00", "six hex"),
            ("tap,ifname=t0,mac=02:00:00:00:00:zz", "not hex"),
            ("tap,ifname=t0,mac=02:00:00:00:00:123", "two hex"),
            ("tap,ifname=t0,flag", "key=value"),
        ];
        for (spec, needle) in cases {
            let err = NetSpec::parse(spec).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec:?}: {err}");
        }
    }
}
