//! The command-line syntax for the gdb server's address: `tcp:ADDR:PORT`
//! (as QEMU's `-gdb tcp::1234`), with `-s` meaning `tcp:127.0.0.1:1234`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The address `-s` stands for: loopback, port 1234 (QEMU's default).
pub const DEFAULT_GDB_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1234);

/// Errors parsing a `--gdb` address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The transport is not `tcp:`.
    #[error("`{0}`: expected tcp:ADDR:PORT (e.g. tcp:127.0.0.1:1234 or tcp::1234)")]
    Syntax(String),
    /// The port is not a number from 0 to 65535.
    #[error("`{0}`: the port must be a number from 0 to 65535")]
    Port(String),
    /// The host is not an IP address.
    #[error("`{0}`: the address must be an IPv4 or IPv6 address (IPv6 in brackets)")]
    Host(String),
}

/// Parses `tcp:ADDR:PORT`. An empty ADDR (`tcp::1234`) or `localhost`
/// means 127.0.0.1: the server listens on loopback unless another address
/// is given. IPv6 addresses go in brackets (`tcp:[::1]:1234`). A bare
/// `PORT` or `:PORT` is accepted as loopback too.
pub fn parse_gdb_addr(spec: &str) -> Result<SocketAddr, AddrError> {
    let syntax = || AddrError::Syntax(spec.to_string());
    let rest = match spec.strip_prefix("tcp:") {
        Some(rest) => rest,
        None if spec.contains("://") || spec.starts_with("unix:") => return Err(syntax()),
        None if !spec.contains(':') || spec.starts_with(':') => spec,
        None => return Err(syntax()),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port),
        None => ("", rest),
    };
    if port.is_empty() {
        return Err(syntax());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| AddrError::Port(spec.to_string()))?;
    let ip = match host {
        "" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => {
            let h = match (h.strip_prefix('['), h.ends_with(']')) {
                (Some(inner), true) => inner.strip_suffix(']').unwrap_or(inner),
                (None, false) => h,
                _ => return Err(AddrError::Host(spec.to_string())),
            };
            h.parse().map_err(|_| AddrError::Host(spec.to_string()))?
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// The line the VMM prints on stderr once the server listens, e.g.
/// `seraph-v: waiting for gdb on tcp:127.0.0.1:1234`.
pub fn waiting_message(addr: SocketAddr) -> String {
    format!("seraph-v: waiting for gdb on tcp:{addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(parse_gdb_addr("tcp:127.0.0.1:1234"), Ok(DEFAULT_GDB_ADDR));
        assert_eq!(parse_gdb_addr("tcp::1234"), Ok(DEFAULT_GDB_ADDR));
        assert_eq!(parse_gdb_addr("tcp:localhost:1234"), Ok(DEFAULT_GDB_ADDR));
        assert_eq!(parse_gdb_addr("1234"), Ok(DEFAULT_GDB_ADDR));
        assert_eq!(parse_gdb_addr(":1234"), Ok(DEFAULT_GDB_ADDR));
        assert_eq!(parse_gdb_addr("tcp:0.0.0.0:9000"), Ok(sa("0.0.0.0:9000")));
        assert_eq!(parse_gdb_addr("tcp:[::1]:4321"), Ok(sa("[::1]:4321")));
        assert_eq!(parse_gdb_addr("tcp:127.0.0.1:0"), Ok(sa("127.0.0.1:0")));
    }

    #[test]
    fn refuses_the_rest_with_a_reason() {
        for bad in [
            "",
            "tcp:",
            "tcp:127.0.0.1:",
            "udp:1.2.3.4:5",
            "unix:/tmp/s",
            "1.2.3.4:5",
        ] {
            assert!(
                matches!(parse_gdb_addr(bad), Err(AddrError::Syntax(_))),
                "{bad}"
            );
        }
        for bad in ["tcp::65536", "tcp::-1", "tcp::12ab", "tcp:1.2.3.4:x"] {
            assert!(
                matches!(parse_gdb_addr(bad), Err(AddrError::Port(_))),
                "{bad}"
            );
        }
        for bad in ["tcp:example.org:1234", "tcp:[::1:1234", "tcp:1.2.3:1"] {
            assert!(
                matches!(parse_gdb_addr(bad), Err(AddrError::Host(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn waiting_line_names_the_address() {
        assert_eq!(
            waiting_message(DEFAULT_GDB_ADDR),
            "seraph-v: waiting for gdb on tcp:127.0.0.1:1234"
        );
        assert_eq!(
            waiting_message(sa("[::1]:99")),
            "seraph-v: waiting for gdb on tcp:[::1]:99"
        );
    }
}
