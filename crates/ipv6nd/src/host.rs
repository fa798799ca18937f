//! What a host configures from the Router Advertisements of one
//! point-to-point link (the IP-HTTPS client, MS-IPHTTPS §3.1.5.2, and the
//! SSTP client's IPv6): SLAAC addresses (RFC 4862 §5.5.3), the default
//! router (RFC 4861 §6.3.4) and Route Information options (RFC 4191 §3.1).
//!
//! [`HostConfig`] remembers what it has configured and turns every new
//! advertisement into a list of [`Change`]s for the driver to carry out:
//! additions for what is new, removals for what the advertisement
//! withdraws (a prefix with valid lifetime 0, router lifetime 0, a route
//! with lifetime 0). [`HostConfig::clear`] undoes everything when the link
//! goes down: what one session's router advertised is meaningless after
//! it (the next session may be given another /64).
//!
//! The server is peer input: at most [`MAX_ADDRESSES`] addresses and
//! [`MAX_ROUTES`] routes are configured from one link, and what goes
//! beyond is reported as [`Change::OverLimit`].
//!
//! Lifetimes are not run down here: the server refreshes its
//! advertisements well within them (ours every 10 minutes for 30), and the
//! link going down clears everything. Zero lifetimes are honoured at once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;

use crate::addr::InterfaceId;
use crate::nd::ReceivedAdvert;

/// A route through the link's router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// Destination prefix (bits beyond `prefix_len` are zero).
    pub prefix: Ipv6Addr,
    /// Prefix length, 0..=128 (0: the default route).
    pub prefix_len: u8,
    /// The router's link-local address.
    pub via: Ipv6Addr,
}

impl Route {
    /// Whether this is the default route (`::/0`).
    pub fn is_default(&self) -> bool {
        self.prefix_len == 0
    }
}

/// One step for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add this address as a /64 on the link.
    AddAddress(Ipv6Addr),
    /// Remove this address.
    RemoveAddress(Ipv6Addr),
    /// Add this route through the link.
    AddRoute(Route),
    /// Remove this route.
    RemoveRoute(Route),
    /// The advertised DNS servers changed (RFC 8106); empty when withdrawn.
    Dns(Vec<Ipv6Addr>),
    /// This many new addresses and routes were not configured: the
    /// [`MAX_ADDRESSES`] / [`MAX_ROUTES`] limits were reached.
    OverLimit {
        /// How many were left out.
        ignored: usize,
    },
}

/// Most addresses configured from one link: what the server advertises is
/// peer input, and one advertisement may carry hundreds of prefixes.
pub const MAX_ADDRESSES: usize = 16;

/// Most routes configured from one link (the default route included).
pub const MAX_ROUTES: usize = 256;

/// The addresses and routes configured from one link's advertisements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    accept_default: bool,
    addresses: BTreeSet<Ipv6Addr>,
    routes: BTreeSet<Route>,
    dns: Vec<Ipv6Addr>,
}

impl HostConfig {
    /// Nothing configured yet. `accept_default`: whether a router lifetime
    /// above 0 installs a default route (otherwise only advertised routes).
    pub fn new(accept_default: bool) -> Self {
        HostConfig {
            accept_default,
            ..HostConfig::default()
        }
    }

    /// The addresses configured now.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.addresses.iter().copied()
    }

    /// The routes configured now.
    pub fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.routes.iter().copied()
    }

    /// Applies an advertisement received on the link; `iid` is our interface
    /// identifier. Withdrawals are carried out before additions, so that a
    /// renumbering advertisement fits within the limits.
    pub fn apply(&mut self, ra: &ReceivedAdvert, iid: InterfaceId) -> Vec<Change> {
        let mut addrs: BTreeMap<Ipv6Addr, bool> = BTreeMap::new();
        for p in ra.advert.prefixes.iter().filter(|p| p.autonomous) {
            if let Some(addr) = crate::addr::slaac(p.prefix, p.prefix_len, iid) {
                let keep = p.valid_lifetime > 0 && p.preferred_lifetime <= p.valid_lifetime;
                *addrs.entry(addr).or_insert(false) |= keep;
            }
        }
        // Route -> whether the advertisement keeps it; a route named twice
        // (the default router and a ::/0 Route Information option) is kept
        // if either keeps it.
        let default = Route {
            prefix: Ipv6Addr::UNSPECIFIED,
            prefix_len: 0,
            via: ra.router,
        };
        let mut routes: BTreeMap<Route, bool> = BTreeMap::new();
        routes.insert(
            default,
            self.accept_default && ra.advert.router_lifetime > 0,
        );
        for r in &ra.advert.routes {
            let route = Route {
                prefix: r.prefix,
                prefix_len: r.prefix_len,
                via: ra.router,
            };
            // A ::/0 Route Information option is a default route too
            // (RFC 4191 §3.1); it follows `accept_default` likewise.
            let keep = r.lifetime > 0 && (route.prefix_len > 0 || self.accept_default);
            *routes.entry(route).or_insert(false) |= keep;
        }

        let mut changes = Vec::new();
        // A prefix that is not autonomous (or a malformed one) is not a
        // withdrawal: only a zero lifetime is.
        for (a, keep) in &addrs {
            if !keep && self.addresses.remove(a) {
                changes.push(Change::RemoveAddress(*a));
            }
        }
        for (r, keep) in &routes {
            if !keep && self.routes.remove(r) {
                changes.push(Change::RemoveRoute(*r));
            }
        }
        let kept_addrs = addrs.into_iter().filter(|k| k.1).map(|k| k.0);
        let kept_routes = routes.into_iter().filter(|k| k.1).map(|k| k.0);
        let ignored = add_within(
            &mut self.addresses,
            kept_addrs,
            MAX_ADDRESSES,
            &mut changes,
            Change::AddAddress,
        ) + add_within(
            &mut self.routes,
            kept_routes,
            MAX_ROUTES,
            &mut changes,
            Change::AddRoute,
        );
        if ignored > 0 {
            changes.push(Change::OverLimit { ignored });
        }
        let dns = ra.advert.dns_servers();
        if dns != self.dns {
            self.dns = dns.clone();
            changes.push(Change::Dns(dns));
        }
        changes
    }

    /// The link went down: remove everything configured from it.
    pub fn clear(&mut self) -> Vec<Change> {
        let mut changes: Vec<Change> = self
            .routes
            .iter()
            .map(|r| Change::RemoveRoute(*r))
            .collect();
        changes.extend(self.addresses.iter().map(|a| Change::RemoveAddress(*a)));
        if !self.dns.is_empty() {
            changes.push(Change::Dns(Vec::new()));
        }
        *self = HostConfig::new(self.accept_default);
        changes
    }
}

/// Inserts the new `items` into `set` while it holds fewer than `max`,
/// recording each as `add(item)`; returns how many did not fit.
fn add_within<T: Ord + Copy>(
    set: &mut BTreeSet<T>,
    items: impl Iterator<Item = T>,
    max: usize,
    changes: &mut Vec<Change>,
    add: fn(T) -> Change,
) -> usize {
    let mut ignored = 0;
    for item in items {
        if set.contains(&item) {
            continue;
        }
        if set.len() >= max {
            ignored += 1;
        } else {
            set.insert(item);
            changes.push(add(item));
        }
    }
    ignored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nd::{PrefixInfo, RouteInfo, RoutePreference, RouterAdvert};
    use crate::Prefix64;

    const ROUTER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

    fn iid() -> InterfaceId {
        InterfaceId::new([2, 0, 0, 0, 0, 0, 0, 7]).unwrap()
    }

    fn p64(s: &str) -> Prefix64 {
        Prefix64::of(s.parse().unwrap())
    }

    fn received(advert: RouterAdvert) -> ReceivedAdvert {
        ReceivedAdvert {
            router: ROUTER,
            destination: "ff02::1".parse().unwrap(),
            advert,
            ignored_options: 0,
        }
    }

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn rio(prefix: &str, prefix_len: u8, lifetime: u32) -> RouteInfo {
        RouteInfo {
            prefix: addr(prefix),
            prefix_len,
            preference: RoutePreference::Medium,
            lifetime,
        }
    }

    fn default_route() -> Route {
        Route {
            prefix: Ipv6Addr::UNSPECIFIED,
            prefix_len: 0,
            via: ROUTER,
        }
    }

    #[test]
    fn first_advert_adds_address_default_route_and_dns() {
        let mut h = HostConfig::new(true);
        let ra = received(RouterAdvert::for_client(
            p64("fd00:1:0:1::"),
            &[addr("fd00:1::53")],
        ));
        let c = h.apply(&ra, iid());
        assert_eq!(
            c,
            vec![
                Change::AddAddress(addr("fd00:1:0:1:200::7")),
                Change::AddRoute(default_route()),
                Change::Dns(vec![addr("fd00:1::53")]),
            ]
        );
        // The periodic repeat changes nothing.
        assert_eq!(h.apply(&ra, iid()), vec![]);
        assert!(default_route().is_default());
    }

    #[test]
    fn zero_lifetimes_withdraw() {
        let mut h = HostConfig::new(true);
        let mut advert = RouterAdvert::for_client(p64("fd00:1:0:1::"), &[]);
        h.apply(&received(advert.clone()), iid());
        advert.router_lifetime = 0;
        assert_eq!(
            h.apply(&received(advert.clone()), iid()),
            vec![Change::RemoveRoute(default_route())]
        );
        advert.prefixes[0].valid_lifetime = 0;
        advert.prefixes[0].preferred_lifetime = 0;
        assert_eq!(
            h.apply(&received(advert), iid()),
            vec![Change::RemoveAddress(addr("fd00:1:0:1:200::7"))]
        );
        assert_eq!(h.addresses().count() + h.routes().count(), 0);
    }

    #[test]
    fn split_tunnel_routes_without_default() {
        let mut h = HostConfig::new(true);
        let mut advert = RouterAdvert::for_client(p64("fd00:1:0:2::"), &[]);
        advert.router_lifetime = 0;
        advert.routes = vec![rio("fd99::", 32, 1800)];
        let r = Route {
            prefix: addr("fd99::"),
            prefix_len: 32,
            via: ROUTER,
        };
        assert_eq!(
            h.apply(&received(advert.clone()), iid()),
            vec![
                Change::AddAddress(addr("fd00:1:0:2:200::7")),
                Change::AddRoute(r)
            ]
        );
        advert.routes[0].lifetime = 0;
        assert_eq!(
            h.apply(&received(advert), iid()),
            vec![Change::RemoveRoute(r)]
        );
    }

    #[test]
    fn default_refused_when_not_accepted() {
        let mut h = HostConfig::new(false);
        let mut advert = RouterAdvert::for_client(p64("fd00:1:0:1::"), &[]);
        advert.routes = vec![rio("::", 0, 1800)];
        assert_eq!(
            h.apply(&received(advert), iid()),
            vec![Change::AddAddress(addr("fd00:1:0:1:200::7"))]
        );
    }

    #[test]
    fn default_router_kept_while_a_zero_default_route_option_comes_along() {
        let mut h = HostConfig::new(true);
        let mut advert = RouterAdvert::for_client(p64("fd00:1:0:1::"), &[]);
        advert.routes = vec![rio("::", 0, 0)];
        let c = h.apply(&received(advert.clone()), iid());
        assert!(c.contains(&Change::AddRoute(default_route())), "{c:?}");
        assert_eq!(h.apply(&received(advert), iid()), vec![]);
    }

    #[test]
    fn a_flood_of_prefixes_and_routes_stops_at_the_limits() {
        let mut h = HostConfig::new(true);
        let mut advert = RouterAdvert::for_client(p64("fd00:1:0:0::"), &[]);
        advert.prefixes = (0..40u16)
            .map(|i| PrefixInfo::slaac64(p64(&format!("fd00:1:0:{i:x}::"))))
            .collect();
        advert.routes = (0..300u16)
            .map(|i| rio(&format!("fd99:{i:x}::"), 32, 600))
            .collect();
        let c = h.apply(&received(advert.clone()), iid());
        assert_eq!(h.addresses().count(), MAX_ADDRESSES);
        assert_eq!(h.routes().count(), MAX_ROUTES);
        // 24 addresses and 301 - 256 = 45 routes (the default one too) left out.
        assert_eq!(c.last(), Some(&Change::OverLimit { ignored: 24 + 45 }));
        // Withdrawing one makes room for a new one in the same advertisement.
        let full = h.addresses().next().unwrap();
        advert.prefixes[0].valid_lifetime = 0;
        advert.prefixes[0].preferred_lifetime = 0;
        advert.prefixes.truncate(1);
        advert.prefixes.push(PrefixInfo::slaac64(p64("fd00:2::")));
        advert.routes.clear();
        let c = h.apply(&received(advert), iid());
        assert_eq!(c[0], Change::RemoveAddress(full));
        assert!(
            c.contains(&Change::AddAddress(addr("fd00:2:0:0:200::7"))),
            "{c:?}"
        );
        assert_eq!(h.addresses().count(), MAX_ADDRESSES);
    }

    #[test]
    fn non_autonomous_and_inconsistent_prefixes_add_nothing() {
        let mut h = HostConfig::new(false);
        let mut advert = RouterAdvert::for_client(p64("fd00:1:0:1::"), &[]);
        advert.prefixes[0].autonomous = false;
        assert_eq!(h.apply(&received(advert.clone()), iid()), vec![]);
        advert.prefixes[0].autonomous = true;
        advert.prefixes[0].preferred_lifetime = advert.prefixes[0].valid_lifetime + 1;
        assert_eq!(h.apply(&received(advert), iid()), vec![]);
    }

    #[test]
    fn clear_undoes_everything_and_keeps_the_policy() {
        let mut h = HostConfig::new(true);
        let ra = received(RouterAdvert::for_client(
            p64("fd00:1:0:1::"),
            &[addr("fd00:1::53")],
        ));
        h.apply(&ra, iid());
        assert_eq!(
            h.clear(),
            vec![
                Change::RemoveRoute(default_route()),
                Change::RemoveAddress(addr("fd00:1:0:1:200::7")),
                Change::Dns(vec![]),
            ]
        );
        assert_eq!(h.clear(), vec![]);
        // A new link's advertisement is applied from scratch.
        assert_eq!(h.apply(&ra, iid()).len(), 3);
    }

    /// Any sequence of advertisements: every Add is of something not yet
    /// configured, every Remove of something configured, the accessors
    /// agree with the changes, and `clear` leaves nothing behind.
    #[test]
    fn changes_balance_over_random_adverts() {
        use std::collections::BTreeSet;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for accept_default in [false, true] {
            let mut h = HostConfig::new(accept_default);
            let (mut addrs, mut routes) = (BTreeSet::new(), BTreeSet::new());
            let mut check = |changes: Vec<Change>, h: &HostConfig| {
                for c in changes {
                    match c {
                        Change::AddAddress(a) => assert!(addrs.insert(a)),
                        Change::RemoveAddress(a) => assert!(addrs.remove(&a)),
                        Change::AddRoute(r) => assert!(routes.insert(r)),
                        Change::RemoveRoute(r) => assert!(routes.remove(&r)),
                        Change::Dns(_) | Change::OverLimit { .. } => {}
                    }
                }
                assert_eq!(h.addresses().collect::<BTreeSet<_>>(), addrs);
                assert_eq!(h.routes().collect::<BTreeSet<_>>(), routes);
            };
            for _ in 0..2000 {
                let r = next();
                let mut advert = RouterAdvert::for_client(
                    p64(["fd00:1:0:1::", "fd00:1:0:2::"][(r & 1) as usize]),
                    &[],
                );
                advert.router_lifetime = if r & 2 == 0 { 0 } else { 1800 };
                if r & 4 == 0 {
                    advert.prefixes[0].valid_lifetime = 0;
                    advert.prefixes[0].preferred_lifetime = 0;
                }
                for (bit, len) in [(8u64, 0u8), (16, 32), (32, 48)] {
                    if r & bit != 0 {
                        let lifetime = if r & (bit << 8) == 0 { 0 } else { 600 };
                        let prefix = if len == 0 { "::" } else { "fd99::" };
                        advert.routes.push(rio(prefix, len, lifetime));
                    }
                }
                let changes = h.apply(&received(advert), iid());
                // No churn: nothing is removed and added back at once.
                for c in &changes {
                    if let Change::RemoveRoute(r) = c {
                        assert!(!changes.contains(&Change::AddRoute(*r)), "{changes:?}");
                    }
                }
                check(changes, &h);
                if r % 97 == 0 {
                    let changes = h.clear();
                    check(changes, &h);
                }
            }
            let changes = h.clear();
            check(changes, &h);
            assert_eq!(h.addresses().count() + h.routes().count(), 0);
        }
    }
}
