//! Neighbor Discovery messages for the IP-HTTPS link (RFC 4861), with the
//! Route Information option (RFC 4191 §2.3) and the Recursive DNS Server
//! option (RFC 8106 §5.1).
//!
//! MS-IPHTTPS §3.2.3: the server "SHOULD act as a router between its
//! IP-HTTPS clients and other networks" and "uses neighbor discovery to
//! maintain the link"; §3.1.5.2: once the link is up it "is usable to send
//! and receive IPv6 traffic (including neighbor and router discovery)" and
//! its MTU is 1280. So:
//!
//! * server: parse [`RouterSolicit`] and answer with a [`RouterAdvert`]
//!   (prefix information with the on-link and autonomous flags, MTU 1280,
//!   RDNSS, from the router's link-local address to ff02::1 or to the
//!   soliciting address); parse [`NeighborSolicit`] and answer with a
//!   Neighbor Advertisement for the router's own addresses;
//! * client: build a [`RouterSolicit`], parse the [`RouterAdvert`] for
//!   prefixes (SLAAC), MTU, RDNSS, routes, router address and lifetime.
//!
//! Every parser applies the validity checks of RFC 4861 (§6.1.1 for RS,
//! §6.1.2 for RA, §7.1.1 for NS): hop limit 255, ICMPv6 checksum, code 0,
//! minimum length, options of non-zero length that stay within the message.
//! Unknown options are skipped (§4.6 "... MUST silently ignore any options
//! they do not recognize"). Extension headers are not followed: ND messages
//! on this link never carry them, and a packet with one is not ND here.

use std::net::Ipv6Addr;

use crate::addr::{is_link_local, solicited_node, Prefix64, ALL_NODES, ALL_ROUTERS};
use crate::checksum;
use crate::icmpv6::{Icmpv6Error, Icmpv6Type};
use crate::ipv6::{Ipv6Error, Ipv6Packet, Ipv6Repr, NextHeader, HEADER_LEN, MIN_MTU};

/// Hop limit of every ND message (RFC 4861 §6.1, §7.1).
pub const ND_HOP_LIMIT: u8 = 255;

/// Default router lifetime we advertise: 1800 s (RFC 4861 §6.2.1 default,
/// 3 x MaxRtrAdvInterval).
pub const DEFAULT_ROUTER_LIFETIME: u16 = 1800;

/// Default valid lifetime of an advertised prefix: 1 day.
pub const DEFAULT_VALID_LIFETIME: u32 = 86_400;

/// Default preferred lifetime of an advertised prefix: 4 hours.
pub const DEFAULT_PREFERRED_LIFETIME: u32 = 14_400;

/// Default RDNSS lifetime: the router lifetime (RFC 8106 §5.1 recommends at
/// least 3 x MaxRtrAdvInterval).
pub const DEFAULT_RDNSS_LIFETIME: u32 = DEFAULT_ROUTER_LIFETIME as u32;

/// An ND option type (IANA "IPv6 Neighbor Discovery Option Formats").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NdOptionType {
    /// 1
    SourceLinkLayerAddr,
    /// 2
    TargetLinkLayerAddr,
    /// 3
    PrefixInformation,
    /// 4
    RedirectedHeader,
    /// 5
    Mtu,
    /// 24 (RFC 4191)
    RouteInformation,
    /// 25 (RFC 8106)
    Rdnss,
    /// 31 (RFC 8106)
    Dnssl,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for NdOptionType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::SourceLinkLayerAddr,
            2 => Self::TargetLinkLayerAddr,
            3 => Self::PrefixInformation,
            4 => Self::RedirectedHeader,
            5 => Self::Mtu,
            24 => Self::RouteInformation,
            25 => Self::Rdnss,
            31 => Self::Dnssl,
            o => Self::Unknown(o),
        }
    }
}

impl From<NdOptionType> for u8 {
    fn from(v: NdOptionType) -> u8 {
        match v {
            NdOptionType::SourceLinkLayerAddr => 1,
            NdOptionType::TargetLinkLayerAddr => 2,
            NdOptionType::PrefixInformation => 3,
            NdOptionType::RedirectedHeader => 4,
            NdOptionType::Mtu => 5,
            NdOptionType::RouteInformation => 24,
            NdOptionType::Rdnss => 25,
            NdOptionType::Dnssl => 31,
            NdOptionType::Unknown(o) => o,
        }
    }
}

/// Why a packet is not a valid ND message of the expected kind, or why a
/// message cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NdError {
    /// Not a well-formed IPv6 packet.
    #[error(transparent)]
    Ipv6(#[from] Ipv6Error),
    /// Not a usable ICMPv6 message (not ICMPv6, truncated, bad checksum).
    #[error(transparent)]
    Icmpv6(#[from] Icmpv6Error),
    /// Another ICMPv6 message type.
    #[error("ICMPv6 type {got:?}, expected {expected:?}")]
    WrongType {
        /// What the parser wanted.
        expected: Icmpv6Type,
        /// What the packet is.
        got: Icmpv6Type,
    },
    /// ICMPv6 code other than 0.
    #[error("ICMPv6 code {0}, expected 0")]
    Code(u8),
    /// Hop limit other than 255: the message may come from off-link.
    #[error("hop limit {0}, expected 255")]
    HopLimit(u8),
    /// Message shorter than its fixed part.
    #[error("{len}-byte message is shorter than {need} bytes")]
    Truncated {
        /// ICMPv6 message length.
        len: usize,
        /// Its fixed part.
        need: usize,
    },
    /// An option of length zero, one overrunning the message, or a known
    /// option whose length or contents are invalid.
    #[error("malformed option type {kind} ({len} bytes)")]
    BadOption {
        /// Option type.
        kind: u8,
        /// Bytes the option claims or has.
        len: usize,
    },
    /// A Router Advertisement must come from a link-local address (§6.1.2),
    /// and one is built only from such an address (§4.2).
    #[error("source {0} is not link-local")]
    SourceNotLinkLocal(Ipv6Addr),
    /// A source link-layer address option with the unspecified source.
    #[error("link-layer address option with the unspecified source")]
    UnspecifiedWithLinkLayer,
    /// A Neighbor Solicitation for a multicast target.
    #[error("multicast target {0}")]
    MulticastTarget(Ipv6Addr),
    /// A duplicate address detection probe not sent to the target's
    /// solicited-node address.
    #[error("DAD probe sent to {0}, not the solicited-node address")]
    DadDestination(Ipv6Addr),
    /// An RDNSS option with no server (RFC 8106 §5.1 needs one).
    #[error("RDNSS option with no server")]
    EmptyRdnss,
    /// The message would not fit in the 1280-byte link MTU.
    #[error("{len}-byte message exceeds the 1280-byte link MTU")]
    TooLarge {
        /// Packet length it would have.
        len: usize,
    },
    /// The output buffer is too small.
    #[error("output buffer of {have} bytes, {need} needed")]
    BufferTooSmall {
        /// Buffer length.
        have: usize,
        /// Packet length.
        need: usize,
    },
}

/// Checks the common ND rules and returns the IPv6 packet view and the
/// ICMPv6 message.
fn nd_message(
    packet: &[u8],
    expected: Icmpv6Type,
    min_len: usize,
) -> Result<(Ipv6Packet<&[u8]>, &[u8]), NdError> {
    let ip = Ipv6Packet::new_checked(packet)?;
    if ip.next_header() != NextHeader::Icmpv6 {
        return Err(Icmpv6Error::NotIcmpv6(ip.next_header()).into());
    }
    // The view checked the length: the message is the rest of the packet.
    let msg = &packet[HEADER_LEN..];
    if msg.len() < 4 {
        return Err(Icmpv6Error::Truncated {
            len: msg.len(),
            need: 4,
        }
        .into());
    }
    let got = Icmpv6Type::from(msg[0]);
    if got != expected {
        return Err(NdError::WrongType { expected, got });
    }
    if ip.hop_limit() != ND_HOP_LIMIT {
        return Err(NdError::HopLimit(ip.hop_limit()));
    }
    if !checksum::verify_icmpv6(&ip.src_addr(), &ip.dst_addr(), msg) {
        return Err(Icmpv6Error::Checksum.into());
    }
    if msg[1] != 0 {
        return Err(NdError::Code(msg[1]));
    }
    if msg.len() < min_len {
        return Err(NdError::Truncated {
            len: msg.len(),
            need: min_len,
        });
    }
    Ok((ip, msg))
}

/// Splits an option area into (type, whole option) pairs, checking that
/// each has a non-zero length and stays within the area (RFC 4861 §4.6).
fn options(mut area: &[u8]) -> Result<Vec<(u8, &[u8])>, NdError> {
    let mut out = Vec::new();
    while !area.is_empty() {
        let kind = area[0];
        let Some(&units) = area.get(1) else {
            return Err(NdError::BadOption {
                kind,
                len: area.len(),
            });
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > area.len() {
            return Err(NdError::BadOption {
                kind,
                len: len.max(area.len()),
            });
        }
        out.push((kind, &area[..len]));
        area = &area[len..];
    }
    Ok(out)
}

fn addr16(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[..16]);
    Ipv6Addr::from(o)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn mask_prefix(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    crate::addr::Ipv6Prefix::truncating(addr, len).addr()
}

/// Sequential writer over a buffer whose size was computed beforehand.
struct Cursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn put(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
    fn zeros(&mut self, n: usize) {
        self.buf[self.pos..self.pos + n].fill(0);
        self.pos += n;
    }
}

/// Writes a whole IPv6 packet carrying one ND message of `msg_len` bytes,
/// whose body `body` writes after the 4-byte ICMPv6 header, then fills the
/// checksum. Returns the packet length.
fn emit_nd(
    out: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kind: Icmpv6Type,
    msg_len: usize,
    body: impl FnOnce(&mut Cursor<'_>),
) -> Result<usize, NdError> {
    let total = HEADER_LEN + msg_len;
    if total > MIN_MTU {
        return Err(NdError::TooLarge { len: total });
    }
    if out.len() < total {
        return Err(NdError::BufferTooSmall {
            have: out.len(),
            need: total,
        });
    }
    let out = &mut out[..total];
    let (hdr, msg) = out.split_at_mut(HEADER_LEN);
    let hdr: &mut [u8; HEADER_LEN] = hdr.try_into().expect("split at HEADER_LEN");
    Ipv6Repr {
        src,
        dst,
        next_header: NextHeader::Icmpv6,
        // total <= 1280, so this fits.
        payload_len: msg_len as u16,
        hop_limit: ND_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(hdr);
    let mut c = Cursor { buf: msg, pos: 0 };
    c.u8(kind.into());
    c.u8(0);
    c.u16(0);
    body(&mut c);
    debug_assert_eq!(c.pos, msg_len, "ND length computed wrongly");
    checksum::fill_icmpv6(&src, &dst, msg);
    Ok(total)
}

fn to_vec(
    len: Result<usize, NdError>,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, NdError>,
) -> Result<Vec<u8>, NdError> {
    let len = len?;
    let mut v = vec![0u8; len];
    emit(&mut v)?;
    Ok(v)
}

/// Length of a link-layer address option carrying `n` bytes.
fn lladdr_option_len(n: usize) -> usize {
    (2 + n).div_ceil(8) * 8
}

fn put_lladdr(c: &mut Cursor<'_>, kind: NdOptionType, addr: &[u8]) {
    let len = lladdr_option_len(addr.len());
    c.u8(kind.into());
    c.u8((len / 8) as u8);
    c.put(addr);
    c.zeros(len - 2 - addr.len());
}

/// Link-layer address options are for links that have such addresses;
/// IP-HTTPS has none, so these are only carried through, within reason.
const MAX_LLADDR: usize = 14;

fn check_lladdr(addr: &Option<Vec<u8>>) -> Result<usize, NdError> {
    match addr {
        None => Ok(0),
        Some(a) if a.len() <= MAX_LLADDR => Ok(lladdr_option_len(a.len())),
        Some(a) => Err(NdError::BadOption {
            kind: 1,
            len: a.len(),
        }),
    }
}

/// Router preference (RFC 4191 §2.1), a 2-bit field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RoutePreference {
    /// 00
    #[default]
    Medium,
    /// 01
    High,
    /// 11
    Low,
    /// 10: reserved; a Route Information option carrying it is ignored,
    /// and as a default router preference it means Medium (RFC 4191 §2.2).
    Reserved,
}

impl RoutePreference {
    fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => Self::Medium,
            1 => Self::High,
            3 => Self::Low,
            _ => Self::Reserved,
        }
    }
    fn bits(self) -> u8 {
        match self {
            Self::Medium => 0,
            Self::High => 1,
            Self::Low => 3,
            Self::Reserved => 2,
        }
    }
}

/// Prefix Information option (RFC 4861 §4.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixInfo {
    /// The prefix; bits beyond `prefix_len` are zero.
    pub prefix: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix_len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: the prefix may be used for SLAAC.
    pub autonomous: bool,
    /// Valid lifetime in seconds (`u32::MAX` = infinity).
    pub valid_lifetime: u32,
    /// Preferred lifetime in seconds (`u32::MAX` = infinity).
    pub preferred_lifetime: u32,
}

impl PrefixInfo {
    /// A /64 with the on-link and autonomous flags and default lifetimes.
    pub fn slaac64(prefix: Prefix64) -> Self {
        PrefixInfo {
            prefix: prefix.network(),
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: DEFAULT_VALID_LIFETIME,
            preferred_lifetime: DEFAULT_PREFERRED_LIFETIME,
        }
    }

    /// The SLAAC address for interface identifier `iid`, if RFC 4862
    /// §5.5.3 allows one: the A flag is set, the prefix is not link-local,
    /// the preferred lifetime does not exceed the valid lifetime, the
    /// valid lifetime is not zero, and the prefix is a /64.
    pub fn slaac(&self, iid: crate::addr::InterfaceId) -> Option<Ipv6Addr> {
        if !self.autonomous
            || self.preferred_lifetime > self.valid_lifetime
            || self.valid_lifetime == 0
        {
            return None;
        }
        crate::addr::slaac(self.prefix, self.prefix_len, iid)
    }

    const LEN: usize = 32;

    fn parse(o: &[u8]) -> Result<Self, NdError> {
        if o.len() != Self::LEN || o[2] > 128 {
            return Err(NdError::BadOption {
                kind: 3,
                len: o.len(),
            });
        }
        Ok(PrefixInfo {
            prefix_len: o[2],
            on_link: o[3] & 0x80 != 0,
            autonomous: o[3] & 0x40 != 0,
            valid_lifetime: u32_at(o, 4),
            preferred_lifetime: u32_at(o, 8),
            prefix: mask_prefix(addr16(&o[16..]), o[2]),
        })
    }

    fn emit(&self, c: &mut Cursor<'_>) {
        c.u8(3);
        c.u8(4);
        c.u8(self.prefix_len.min(128));
        c.u8(u8::from(self.on_link) << 7 | u8::from(self.autonomous) << 6);
        c.u32(self.valid_lifetime);
        c.u32(self.preferred_lifetime);
        c.zeros(4);
        c.put(&mask_prefix(self.prefix, self.prefix_len).octets());
    }
}

/// Route Information option (RFC 4191 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// The prefix; bits beyond `prefix_len` are zero.
    pub prefix: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix_len: u8,
    /// Route preference (never `Reserved` in a parsed option).
    pub preference: RoutePreference,
    /// Route lifetime in seconds (`u32::MAX` = infinity).
    pub lifetime: u32,
}

impl RouteInfo {
    fn wire_len(&self) -> usize {
        match self.prefix_len {
            0 => 8,
            1..=64 => 16,
            _ => 24,
        }
    }

    /// Parses the option; `Ok(None)` when RFC 4191 §3.1 says to ignore it
    /// (reserved preference).
    fn parse(o: &[u8]) -> Result<Option<Self>, NdError> {
        let bad = NdError::BadOption {
            kind: 24,
            len: o.len(),
        };
        let plen = o[2];
        // §2.3: Length 1, 2 or 3, and large enough for the prefix length.
        let ok = match o.len() {
            8 => plen == 0,
            16 => plen <= 64,
            24 => plen <= 128,
            _ => false,
        };
        if !ok {
            return Err(bad);
        }
        let preference = RoutePreference::from_bits(o[3] >> 3);
        if preference == RoutePreference::Reserved {
            return Ok(None);
        }
        let mut p = [0u8; 16];
        p[..o.len() - 8].copy_from_slice(&o[8..]);
        Ok(Some(RouteInfo {
            prefix: mask_prefix(Ipv6Addr::from(p), plen),
            prefix_len: plen,
            preference,
            lifetime: u32_at(o, 4),
        }))
    }

    fn emit(&self, c: &mut Cursor<'_>) {
        let len = self.wire_len();
        c.u8(24);
        c.u8((len / 8) as u8);
        c.u8(self.prefix_len.min(128));
        c.u8(self.preference.bits() << 3);
        c.u32(self.lifetime);
        c.put(&mask_prefix(self.prefix, self.prefix_len).octets()[..len - 8]);
    }
}

/// Recursive DNS Server option (RFC 8106 §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rdnss {
    /// Lifetime in seconds (`u32::MAX` = infinity, 0 = stop using).
    pub lifetime: u32,
    /// At least one server.
    pub servers: Vec<Ipv6Addr>,
}

impl Rdnss {
    fn wire_len(&self) -> usize {
        8 + 16 * self.servers.len()
    }

    fn parse(o: &[u8]) -> Result<Self, NdError> {
        // Length 3 + 2n, n >= 1.
        if o.len() < 24 || (o.len() - 8) % 16 != 0 {
            return Err(NdError::BadOption {
                kind: 25,
                len: o.len(),
            });
        }
        Ok(Rdnss {
            lifetime: u32_at(o, 4),
            servers: o[8..].chunks_exact(16).map(addr16).collect(),
        })
    }

    fn emit(&self, c: &mut Cursor<'_>) {
        c.u8(25);
        c.u8((self.wire_len() / 8) as u8);
        c.zeros(2);
        c.u32(self.lifetime);
        for s in &self.servers {
            c.put(&s.octets());
        }
    }
}

/// A Router Advertisement (RFC 4861 §4.2) and the options this link uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterAdvert {
    /// Cur Hop Limit (0 = unspecified).
    pub cur_hop_limit: u8,
    /// M: addresses via DHCPv6.
    pub managed: bool,
    /// O: other configuration via DHCPv6.
    pub other_config: bool,
    /// Default router preference (RFC 4191 §2.2).
    pub preference: RoutePreference,
    /// Router Lifetime in seconds; 0 = not a default router.
    pub router_lifetime: u16,
    /// Reachable Time in milliseconds (0 = unspecified).
    pub reachable_time: u32,
    /// Retrans Timer in milliseconds (0 = unspecified).
    pub retrans_timer: u32,
    /// Prefix Information options.
    pub prefixes: Vec<PrefixInfo>,
    /// MTU option.
    pub mtu: Option<u32>,
    /// RDNSS options.
    pub rdnss: Vec<Rdnss>,
    /// Route Information options.
    pub routes: Vec<RouteInfo>,
    /// Source link-layer address option (raw, padding included when
    /// parsed); IP-HTTPS links have no link-layer addresses.
    pub source_lladdr: Option<Vec<u8>>,
}

/// A validated Router Advertisement as a client receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAdvert {
    /// The router's (link-local) address: the next hop of default and
    /// advertised routes.
    pub router: Ipv6Addr,
    /// Where it was sent (ff02::1 or our address).
    pub destination: Ipv6Addr,
    /// The advertisement.
    pub advert: RouterAdvert,
    /// Options skipped as unknown, or ignored (DNSSL, reserved-preference
    /// routes).
    pub ignored_options: usize,
}

impl RouterAdvert {
    /// What the IP-HTTPS server advertises to a client owning `prefix`:
    /// default router for 1800 s, the /64 on-link and autonomous, MTU 1280,
    /// and `dns` as RDNSS (omitted when empty).
    pub fn for_client(prefix: Prefix64, dns: &[Ipv6Addr]) -> Self {
        RouterAdvert {
            cur_hop_limit: 64,
            managed: false,
            other_config: false,
            preference: RoutePreference::Medium,
            router_lifetime: DEFAULT_ROUTER_LIFETIME,
            reachable_time: 0,
            retrans_timer: 0,
            prefixes: vec![PrefixInfo::slaac64(prefix)],
            mtu: Some(MIN_MTU as u32),
            rdnss: if dns.is_empty() {
                Vec::new()
            } else {
                vec![Rdnss {
                    lifetime: DEFAULT_RDNSS_LIFETIME,
                    servers: dns.to_vec(),
                }]
            },
            routes: Vec::new(),
            source_lladdr: None,
        }
    }

    fn msg_len(&self) -> Result<usize, NdError> {
        let mut n = 16 + check_lladdr(&self.source_lladdr)?;
        n += self.prefixes.len() * PrefixInfo::LEN;
        n += if self.mtu.is_some() { 8 } else { 0 };
        for r in &self.rdnss {
            if r.servers.is_empty() {
                return Err(NdError::EmptyRdnss);
            }
            n = n.saturating_add(r.wire_len());
        }
        n = n.saturating_add(self.routes.iter().map(RouteInfo::wire_len).sum());
        Ok(n)
    }

    /// Length of the whole IPv6 packet [`RouterAdvert::emit`] writes.
    pub fn buffer_len(&self) -> Result<usize, NdError> {
        let len = HEADER_LEN + self.msg_len()?;
        if len > MIN_MTU {
            return Err(NdError::TooLarge { len });
        }
        Ok(len)
    }

    /// Writes the whole IPv6 packet (hop limit 255, ICMPv6 checksum) from
    /// link-local `src` to `dst` (ff02::1, or the soliciting address) into
    /// `out`; returns its length.
    pub fn emit(&self, src: Ipv6Addr, dst: Ipv6Addr, out: &mut [u8]) -> Result<usize, NdError> {
        if !is_link_local(src) {
            return Err(NdError::SourceNotLinkLocal(src));
        }
        let len = self.msg_len()?;
        emit_nd(out, src, dst, Icmpv6Type::RouterAdvertisement, len, |c| {
            c.u8(self.cur_hop_limit);
            c.u8(u8::from(self.managed) << 7
                | u8::from(self.other_config) << 6
                | self.preference.bits() << 3);
            c.u16(self.router_lifetime);
            c.u32(self.reachable_time);
            c.u32(self.retrans_timer);
            if let Some(a) = &self.source_lladdr {
                put_lladdr(c, NdOptionType::SourceLinkLayerAddr, a);
            }
            if let Some(mtu) = self.mtu {
                c.u8(5);
                c.u8(1);
                c.zeros(2);
                c.u32(mtu);
            }
            for p in &self.prefixes {
                p.emit(c);
            }
            for r in &self.routes {
                r.emit(c);
            }
            for r in &self.rdnss {
                r.emit(c);
            }
        })
    }

    /// The packet as a new vector.
    pub fn to_packet(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Result<Vec<u8>, NdError> {
        to_vec(self.buffer_len(), |b| self.emit(src, dst, b))
    }

    /// Validates (RFC 4861 §6.1.2) and reads a Router Advertisement.
    pub fn parse(packet: &[u8]) -> Result<ReceivedAdvert, NdError> {
        let (ip, msg) = nd_message(packet, Icmpv6Type::RouterAdvertisement, 16)?;
        if !is_link_local(ip.src_addr()) {
            return Err(NdError::SourceNotLinkLocal(ip.src_addr()));
        }
        let flags = msg[5];
        let mut ra = RouterAdvert {
            cur_hop_limit: msg[4],
            managed: flags & 0x80 != 0,
            other_config: flags & 0x40 != 0,
            preference: match RoutePreference::from_bits(flags >> 3) {
                RoutePreference::Reserved => RoutePreference::Medium,
                p => p,
            },
            router_lifetime: u16::from_be_bytes([msg[6], msg[7]]),
            reachable_time: u32_at(msg, 8),
            retrans_timer: u32_at(msg, 12),
            prefixes: Vec::new(),
            mtu: None,
            rdnss: Vec::new(),
            routes: Vec::new(),
            source_lladdr: None,
        };
        let mut ignored = 0;
        for (kind, o) in options(&msg[16..])? {
            match NdOptionType::from(kind) {
                NdOptionType::SourceLinkLayerAddr => ra.source_lladdr = Some(o[2..].to_vec()),
                NdOptionType::Mtu => {
                    if o.len() != 8 {
                        return Err(NdError::BadOption { kind, len: o.len() });
                    }
                    ra.mtu = Some(u32_at(o, 4));
                }
                NdOptionType::PrefixInformation => ra.prefixes.push(PrefixInfo::parse(o)?),
                NdOptionType::RouteInformation => match RouteInfo::parse(o)? {
                    Some(r) => ra.routes.push(r),
                    None => ignored += 1,
                },
                NdOptionType::Rdnss => ra.rdnss.push(Rdnss::parse(o)?),
                _ => ignored += 1,
            }
        }
        Ok(ReceivedAdvert {
            router: ip.src_addr(),
            destination: ip.dst_addr(),
            advert: ra,
            ignored_options: ignored,
        })
    }

    /// The SLAAC addresses this advertisement yields for `iid`.
    pub fn slaac_addresses(&self, iid: crate::addr::InterfaceId) -> Vec<Ipv6Addr> {
        self.prefixes.iter().filter_map(|p| p.slaac(iid)).collect()
    }

    /// The usable link MTU: the MTU option when it is at least 1280 (RFC
    /// 4861 §6.3.4 ignores smaller values), else 1280.
    pub fn link_mtu(&self) -> u32 {
        match self.mtu {
            Some(m) if m >= MIN_MTU as u32 => m,
            _ => MIN_MTU as u32,
        }
    }

    /// All RDNSS servers with a non-zero lifetime, in order, deduplicated.
    pub fn dns_servers(&self) -> Vec<Ipv6Addr> {
        let mut v: Vec<Ipv6Addr> = Vec::new();
        for r in self.rdnss.iter().filter(|r| r.lifetime > 0) {
            for s in &r.servers {
                if !v.contains(s) {
                    v.push(*s);
                }
            }
        }
        v
    }
}

/// A Router Solicitation (RFC 4861 §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterSolicit {
    /// The soliciting address (may be unspecified).
    pub source: Ipv6Addr,
    /// Where it was sent (normally ff02::2).
    pub destination: Ipv6Addr,
    /// Source link-layer address option, if any (raw).
    pub source_lladdr: Option<Vec<u8>>,
}

impl RouterSolicit {
    /// Validates (RFC 4861 §6.1.1) and reads a Router Solicitation.
    pub fn parse(packet: &[u8]) -> Result<Self, NdError> {
        let (ip, msg) = nd_message(packet, Icmpv6Type::RouterSolicitation, 8)?;
        let mut source_lladdr = None;
        for (kind, o) in options(&msg[8..])? {
            if NdOptionType::from(kind) == NdOptionType::SourceLinkLayerAddr {
                source_lladdr = Some(o[2..].to_vec());
            }
        }
        if ip.src_addr().is_unspecified() && source_lladdr.is_some() {
            return Err(NdError::UnspecifiedWithLinkLayer);
        }
        Ok(RouterSolicit {
            source: ip.src_addr(),
            destination: ip.dst_addr(),
            source_lladdr,
        })
    }

    /// Where the answering advertisement goes: the soliciting address, or
    /// all-nodes when it was unspecified (RFC 4861 §6.2.6).
    pub fn reply_to(&self) -> Ipv6Addr {
        if self.source.is_unspecified() {
            ALL_NODES
        } else {
            self.source
        }
    }

    /// A Router Solicitation from `src` (link-local, or unspecified before
    /// an address exists) to all-routers, with no options: the link has no
    /// link-layer addresses. 48 bytes.
    pub fn build(src: Ipv6Addr) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN + 8];
        // Cannot fail: 48 bytes fit the buffer and the MTU.
        let _ = emit_nd(
            &mut v,
            src,
            ALL_ROUTERS,
            Icmpv6Type::RouterSolicitation,
            8,
            |c| c.zeros(4),
        );
        v
    }
}

/// A Neighbor Solicitation (RFC 4861 §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborSolicit {
    /// The soliciting address; unspecified for duplicate address detection.
    pub source: Ipv6Addr,
    /// Where it was sent.
    pub destination: Ipv6Addr,
    /// The address asked about.
    pub target: Ipv6Addr,
    /// Source link-layer address option, if any (raw).
    pub source_lladdr: Option<Vec<u8>>,
}

impl NeighborSolicit {
    /// Validates (RFC 4861 §7.1.1) and reads a Neighbor Solicitation.
    pub fn parse(packet: &[u8]) -> Result<Self, NdError> {
        let (ip, msg) = nd_message(packet, Icmpv6Type::NeighborSolicitation, 24)?;
        let target = addr16(&msg[8..24]);
        if target.is_multicast() {
            return Err(NdError::MulticastTarget(target));
        }
        let mut source_lladdr = None;
        for (kind, o) in options(&msg[24..])? {
            if NdOptionType::from(kind) == NdOptionType::SourceLinkLayerAddr {
                source_lladdr = Some(o[2..].to_vec());
            }
        }
        if ip.src_addr().is_unspecified() {
            if source_lladdr.is_some() {
                return Err(NdError::UnspecifiedWithLinkLayer);
            }
            if ip.dst_addr() != solicited_node(target) {
                return Err(NdError::DadDestination(ip.dst_addr()));
            }
        }
        Ok(NeighborSolicit {
            source: ip.src_addr(),
            destination: ip.dst_addr(),
            target,
            source_lladdr,
        })
    }

    /// Whether this is a duplicate address detection probe.
    pub fn is_dad(&self) -> bool {
        self.source.is_unspecified()
    }

    /// The Neighbor Advertisement a router owning `own` answers with (RFC
    /// 4861 §7.2.4), or `None` if the target is not one of them. A DAD probe
    /// for one of our addresses is answered to all-nodes with S=0 (the
    /// prober's address is a duplicate); anything else to the solicitor with
    /// S=1. R=1 and O=1; no link-layer option (the link has none).
    pub fn answer(&self, own: &[Ipv6Addr]) -> Option<Vec<u8>> {
        if !own.contains(&self.target) {
            return None;
        }
        let na = NeighborAdvert {
            target: self.target,
            router: true,
            solicited: !self.is_dad(),
            override_flag: true,
        };
        let dst = if self.is_dad() {
            ALL_NODES
        } else {
            self.source
        };
        Some(na.build(self.target, dst))
    }
}

/// A Neighbor Advertisement (RFC 4861 §4.4) without options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborAdvert {
    /// The advertised address.
    pub target: Ipv6Addr,
    /// R: sent by a router.
    pub router: bool,
    /// S: in response to a solicitation.
    pub solicited: bool,
    /// O: override cached link-layer addresses.
    pub override_flag: bool,
}

impl NeighborAdvert {
    /// The whole 64-byte packet from `src` to `dst`.
    pub fn build(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN + 24];
        // Cannot fail: 64 bytes fit the buffer and the MTU.
        let _ = emit_nd(
            &mut v,
            src,
            dst,
            Icmpv6Type::NeighborAdvertisement,
            24,
            |c| {
                c.u8(u8::from(self.router) << 7
                    | u8::from(self.solicited) << 6
                    | u8::from(self.override_flag) << 5);
                c.zeros(3);
                c.put(&self.target.octets());
            },
        );
        v
    }
}

#[cfg(test)]
mod tests;
