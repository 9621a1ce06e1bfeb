//! Who a client is, for the per-client bounds: an IP address (IPv6 by
//! its /64, since one host is usually handed a whole /64 and could
//! otherwise pick a fresh address per connection), or, on the Unix
//! socket, the peer's user id. Also the `trusted_addresses` list.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// The unit every per-client bound counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// An IPv4 address, or an IPv6 address with its low 64 bits cleared.
    Ip(IpAddr),
    /// A Unix-socket client, by user id (`None`: the kernel did not say).
    Unix(Option<u32>),
}

impl Peer {
    /// The client at `addr`: IPv4 (also when mapped into IPv6) as is,
    /// IPv6 by its /64.
    pub fn ip(addr: IpAddr) -> Peer {
        match addr {
            IpAddr::V4(v4) => Peer::Ip(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Peer::Ip(IpAddr::V4(v4)),
                None if v6.is_loopback() => Peer::Ip(IpAddr::V6(v6)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Peer::Ip(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Peer::Ip(IpAddr::V6(a)) if a.is_loopback() => write!(f, "{a}"),
            Peer::Ip(IpAddr::V6(a)) => write!(f, "{a}/64"),
            Peer::Unix(Some(uid)) => write!(f, "unix uid {uid}"),
            Peer::Unix(None) => write!(f, "unix (uid unknown)"),
        }
    }
}

/// One entry of `trusted_addresses`: an address or a network
/// (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("'{0}' is not an IP address or network (like 192.168.1.20 or 10.0.0.0/8)")]
pub struct NetworkError(String);

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Network, NetworkError> {
        let bad = || NetworkError(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
        };
        Ok(Network { addr, prefix })
    }
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a = Peer::ip("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Peer::ip("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = Peer::ip("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let mapped = Peer::ip("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(mapped, Peer::ip("192.0.2.7".parse().unwrap()));
        assert_eq!(Peer::ip("::1".parse().unwrap()).to_string(), "::1");
    }

    #[test]
    fn networks() {
        let lan: Network = "10.0.0.0/8".parse().unwrap();
        assert!(lan.contains("10.200.3.4".parse().unwrap()));
        assert!(lan.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!lan.contains("11.0.0.1".parse().unwrap()));
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "host", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }
}
