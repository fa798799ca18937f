//! The IP-HTTPS client's link state machine (MS-IPHTTPS §3.1.1), its
//! reconnect timer (§3.1.2.1) and the Router Solicitations it sends once the
//! link is up (§3.1.5.2; RFC 4861 §6.3.7).
//!
//! States (§3.1.1): **Disabled**, **Enabled** (waiting for the §3.1.3
//! preconditions), **LinkDown** (establishing the HTTPS connection, or
//! waiting for the reconnect timer), **Established** (HTTPS is up, the POST
//! has been sent, waiting for the response) and **LinkUp**.
//!
//! The engine is sans-IO in the style of quinn-proto: the driver reports
//! what happened ([`Link::transport_connected`], [`Link::tls_established`],
//! [`Link::http_ok`], [`Link::link_failed`], ...), passing the current
//! `Instant`; it sleeps until [`Link::poll_timeout`] and then calls
//! [`Link::handle_timeout`]; and it carries out the [`Event`]s that
//! [`Link::poll_event`] yields (open a transport, send the request, bring
//! the TUN up, ...).
//!
//! # Reconnect timer (§3.1.2.1)
//!
//! "The first failure marks the beginning of the reconnection algorithm.
//! Upon the first failure, the reconnection timer is started for an initial
//! timeout of 30 seconds. Each subsequent failure starts a reconnection
//! timer with a timeout set to the time elapsed since the beginning of the
//! algorithm, up to a maximum timeout of 15 minutes. [...] A successful
//! HTTPS connection resets the timer." [`Backoff`] implements exactly that
//! sentence. Two points of interpretation:
//!
//! * With attempts that take `T` to fail, the timeouts are 30, 30+T, 60+3T,
//!   120+7T, ... and the attempts start 30, 60+2T, 120+6T, ... after the
//!   first failure. The spec's illustrative list "30, 30+T, 60+2T, 120+3T"
//!   agrees for its first two terms (and entirely when T = 0: 30, 30, 60,
//!   120, 240, 480, then 900 every time); its later T coefficients do not
//!   follow from the normative sentence, which we implement.
//! * "A successful HTTPS connection" is taken to be the link coming up (the
//!   200 response), not TLS alone: a server that completes TLS but refuses
//!   the POST must not reset the back-off.
//!
//! An attempt that neither fails nor succeeds within
//! [`LinkConfig::attempt_timeout`] (ours, not the spec's) counts as failed.

use std::time::{Duration, Instant};

/// First reconnect timeout (§3.1.2.1).
pub const INITIAL_RECONNECT: Duration = Duration::from_secs(30);

/// Largest reconnect timeout (§3.1.2.1).
pub const MAX_RECONNECT: Duration = Duration::from_secs(15 * 60);

/// RTR_SOLICITATION_INTERVAL (RFC 4861 §10).
pub const RTR_SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);

/// MAX_RTR_SOLICITATIONS (RFC 4861 §10).
pub const MAX_RTR_SOLICITATIONS: u8 = 3;

/// The §3.1.2.1 back-off, usable on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    began: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL_RECONNECT, MAX_RECONNECT)
    }
}

impl Backoff {
    /// A back-off with these bounds (the spec's are 30 s and 15 min).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            began: None,
        }
    }

    /// Records a failure at `now`; returns how long to wait before the next
    /// attempt: `initial` for the first failure, then the time elapsed since
    /// the first failure, never below `initial`, never above `max`.
    pub fn on_failure(&mut self, now: Instant) -> Duration {
        let wait = match self.began {
            None => {
                self.began = Some(now);
                self.initial
            }
            Some(began) => now.saturating_duration_since(began).max(self.initial),
        };
        wait.min(self.max)
    }

    /// A success: the next failure is a first failure again.
    pub fn reset(&mut self) {
        self.began = None;
    }

    /// When the current run of failures began.
    pub fn began(&self) -> Option<Instant> {
        self.began
    }
}

/// Configuration of a [`Link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// First reconnect timeout; 30 s per §3.1.2.1.
    pub initial_reconnect: Duration,
    /// Cap on the reconnect timeout; 15 min per §3.1.2.1.
    pub max_reconnect: Duration,
    /// How long one attempt (transport, proxies, TLS, HTTP exchange) may
    /// take before it counts as failed; `None` leaves it to the driver.
    pub attempt_timeout: Option<Duration>,
    /// Interval between Router Solicitations (RFC 4861: 4 s).
    pub solicitation_interval: Duration,
    /// Router Solicitations sent while no advertisement arrives (RFC 4861:
    /// 3); 0 sends none.
    pub max_solicitations: u8,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            initial_reconnect: INITIAL_RECONNECT,
            max_reconnect: MAX_RECONNECT,
            attempt_timeout: Some(Duration::from_secs(60)),
            solicitation_interval: RTR_SOLICITATION_INTERVAL,
            max_solicitations: MAX_RTR_SOLICITATIONS,
        }
    }
}

/// The client states of §3.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// IP-HTTPS operations are not possible.
    Disabled,
    /// Waiting for the §3.1.3 preconditions.
    Enabled,
    /// Establishing the HTTPS connection, or waiting to retry.
    LinkDown,
    /// HTTPS is up; request sent, waiting for the response.
    Established,
    /// The link carries IPv6.
    LinkUp,
}

/// Why an attempt or the link failed, as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// TCP connect (or a proxy's CONNECT) failed.
    Connect,
    /// The TLS handshake or certificate validation failed.
    Tls,
    /// The server did not answer 200 (status if there was one).
    Http(Option<u16>),
    /// The server sent non-IPv6 data ([`crate::FrameError`]).
    Framing,
    /// The connection closed or broke.
    Closed,
    /// The attempt took longer than [`LinkConfig::attempt_timeout`].
    AttemptTimeout,
    /// Anything else.
    Other,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Open a new transport to the server: TCP, proxies (CONNECT), TLS.
    /// Report [`Link::transport_connected`], [`Link::tls_established`] or
    /// [`Link::link_failed`].
    Connect {
        /// Attempt number, from 1, for logs.
        attempt: u64,
    },
    /// HTTPS is up: send [`crate::preamble::build_request`], then report
    /// [`Link::http_ok`] or [`Link::link_failed`].
    SendRequest,
    /// The link is up: configure the TUN device (MTU 1280) and start the
    /// data plane.
    LinkUp,
    /// Send a Router Solicitation ([`crate::nd::RouterSolicit::build`]).
    SendRouterSolicitation,
    /// The link went down: stop the data plane, remove addresses/routes
    /// learnt from RAs as the client's policy says.
    LinkDown {
        /// Why.
        reason: Failure,
    },
    /// Close the current transport, if any.
    Close,
    /// The next attempt will start at `at`, `after` from now.
    ReconnectScheduled {
        /// When the timer fires.
        at: Instant,
        /// The timeout chosen by §3.1.2.1.
        after: Duration,
    },
}

/// A report that makes no sense in the current state (typically stale,
/// from a transport already closed). The state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// `event` reported in `state`.
    #[error("{event} in state {state:?}")]
    Unexpected {
        /// The report.
        event: &'static str,
        /// The state at the time.
        state: LinkState,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Reconnect = 0,
    Attempt = 1,
    Solicit = 2,
}

const TIMERS: [Timer; 3] = [Timer::Reconnect, Timer::Attempt, Timer::Solicit];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Disabled,
    Enabled,
    /// LinkDown, an attempt in progress.
    Connecting {
        transport_up: bool,
    },
    /// LinkDown, the reconnect timer running.
    Waiting,
    Established,
    Up {
        solicitations: u8,
        advert_seen: bool,
    },
}

/// The client's IP-HTTPS link.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    phase: Phase,
    backoff: Backoff,
    timers: [Option<Instant>; 3],
    events: std::collections::VecDeque<Event>,
    attempts: u64,
    last_failure: Option<Failure>,
}

impl Link {
    /// A link in the Disabled state.
    pub fn new(config: LinkConfig) -> Self {
        Link {
            backoff: Backoff::new(config.initial_reconnect, config.max_reconnect),
            config,
            phase: Phase::Disabled,
            timers: [None; 3],
            events: Default::default(),
            attempts: 0,
            last_failure: None,
        }
    }

    /// The §3.1.1 state.
    pub fn state(&self) -> LinkState {
        match self.phase {
            Phase::Disabled => LinkState::Disabled,
            Phase::Enabled => LinkState::Enabled,
            Phase::Connecting { .. } | Phase::Waiting => LinkState::LinkDown,
            Phase::Established => LinkState::Established,
            Phase::Up { .. } => LinkState::LinkUp,
        }
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// The most recent failure.
    pub fn last_failure(&self) -> Option<Failure> {
        self.last_failure
    }

    /// Whether the current attempt's transport (TCP and proxies) is up.
    pub fn transport_up(&self) -> bool {
        match self.phase {
            Phase::Connecting { transport_up } => transport_up,
            Phase::Established | Phase::Up { .. } => true,
            _ => false,
        }
    }

    /// When the reconnect timer fires, if it runs.
    pub fn next_reconnect(&self) -> Option<Instant> {
        self.timers[Timer::Reconnect as usize]
    }

    fn unexpected(&self, event: &'static str) -> Result<(), LinkError> {
        Err(LinkError::Unexpected {
            event,
            state: self.state(),
        })
    }

    fn set(&mut self, t: Timer, at: Option<Instant>) {
        self.timers[t as usize] = at;
    }

    fn start_attempt(&mut self, now: Instant) {
        self.attempts += 1;
        self.phase = Phase::Connecting {
            transport_up: false,
        };
        self.set(Timer::Reconnect, None);
        self.set(Timer::Attempt, self.config.attempt_timeout.map(|d| now + d));
        self.events.push_back(Event::Connect {
            attempt: self.attempts,
        });
    }

    /// §3.1.4.1: Disabled -> Enabled.
    pub fn enable(&mut self) -> Result<(), LinkError> {
        if self.phase != Phase::Disabled {
            return self.unexpected("enable");
        }
        self.phase = Phase::Enabled;
        Ok(())
    }

    /// §3.1.3: a precondition holds (always-on policy, user request, proxy
    /// or firewall detected): Enabled -> LinkDown, and the first attempt
    /// starts (§3.1.5.1).
    pub fn initialize(&mut self, now: Instant) -> Result<(), LinkError> {
        if self.phase != Phase::Enabled {
            return self.unexpected("initialize");
        }
        self.start_attempt(now);
        Ok(())
    }

    /// §3.1.4.2: any state -> Disabled; the transport is torn down and the
    /// back-off forgotten.
    pub fn disable(&mut self) {
        match self.phase {
            Phase::Disabled => return,
            Phase::Up { .. } => {
                self.events.push_back(Event::LinkDown {
                    reason: Failure::Other,
                });
                self.events.push_back(Event::Close);
            }
            Phase::Connecting { .. } | Phase::Established => self.events.push_back(Event::Close),
            Phase::Enabled | Phase::Waiting => {}
        }
        self.phase = Phase::Disabled;
        self.timers = [None; 3];
        self.backoff.reset();
    }

    /// The TCP connection (through any proxies) is up; TLS is next. The
    /// state stays LinkDown.
    pub fn transport_connected(&mut self) -> Result<(), LinkError> {
        match self.phase {
            Phase::Connecting { .. } => {
                self.phase = Phase::Connecting { transport_up: true };
                Ok(())
            }
            _ => self.unexpected("transport_connected"),
        }
    }

    /// The HTTPS connection is established (TLS done, or the TCP connection
    /// in plain-HTTP mode): LinkDown -> Established; send the request.
    pub fn tls_established(&mut self) -> Result<(), LinkError> {
        match self.phase {
            Phase::Connecting { .. } => {
                self.phase = Phase::Established;
                self.events.push_back(Event::SendRequest);
                Ok(())
            }
            _ => self.unexpected("tls_established"),
        }
    }

    /// The server answered 200 (§3.1.5.2): Established -> LinkUp. The
    /// reconnect back-off is reset and Router Solicitations start.
    pub fn http_ok(&mut self, now: Instant) -> Result<(), LinkError> {
        if self.phase != Phase::Established {
            return self.unexpected("http_ok");
        }
        self.backoff.reset();
        self.set(Timer::Attempt, None);
        self.events.push_back(Event::LinkUp);
        let mut solicitations = 0;
        if self.config.max_solicitations > 0 {
            self.events.push_back(Event::SendRouterSolicitation);
            solicitations = 1;
        }
        let more = solicitations < self.config.max_solicitations;
        self.set(
            Timer::Solicit,
            more.then(|| now + self.config.solicitation_interval),
        );
        self.phase = Phase::Up {
            solicitations,
            advert_seen: false,
        };
        Ok(())
    }

    /// A valid Router Advertisement arrived: stop soliciting.
    pub fn router_advert_received(&mut self) -> Result<(), LinkError> {
        match self.phase {
            Phase::Up { solicitations, .. } => {
                self.phase = Phase::Up {
                    solicitations,
                    advert_seen: true,
                };
                self.set(Timer::Solicit, None);
                Ok(())
            }
            _ => self.unexpected("router_advert_received"),
        }
    }

    /// The attempt failed or the link broke (§3.1.5.4): close the
    /// transport, take the link down if it was up, and start the reconnect
    /// timer (§3.1.2.1). The state becomes LinkDown.
    pub fn link_failed(&mut self, now: Instant, reason: Failure) -> Result<(), LinkError> {
        match self.phase {
            Phase::Connecting { .. } | Phase::Established => {}
            Phase::Up { .. } => self.events.push_back(Event::LinkDown { reason }),
            _ => return self.unexpected("link_failed"),
        }
        self.events.push_back(Event::Close);
        self.last_failure = Some(reason);
        let after = self.backoff.on_failure(now);
        let at = now + after;
        self.phase = Phase::Waiting;
        self.timers = [None; 3];
        self.set(Timer::Reconnect, Some(at));
        self.events
            .push_back(Event::ReconnectScheduled { at, after });
        Ok(())
    }

    /// The earliest timer, if any: sleep until then and call
    /// [`Link::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in TIMERS {
            let due = matches!(self.timers[t as usize], Some(at) if at <= now);
            if !due {
                continue;
            }
            self.set(t, None);
            match t {
                Timer::Reconnect => {
                    if self.phase == Phase::Waiting {
                        // §3.1.6: re-establish the tunnel.
                        self.start_attempt(now);
                    }
                }
                Timer::Attempt => {
                    if matches!(self.phase, Phase::Connecting { .. } | Phase::Established) {
                        // Cannot fail in these states.
                        let _ = self.link_failed(now, Failure::AttemptTimeout);
                    }
                }
                Timer::Solicit => {
                    if let Phase::Up {
                        solicitations,
                        advert_seen: false,
                    } = self.phase
                    {
                        let solicitations = solicitations.saturating_add(1);
                        self.events.push_back(Event::SendRouterSolicitation);
                        self.phase = Phase::Up {
                            solicitations,
                            advert_seen: false,
                        };
                        if solicitations < self.config.max_solicitations {
                            self.set(
                                Timer::Solicit,
                                Some(now + self.config.solicitation_interval),
                            );
                        }
                    }
                }
            }
        }
    }

    /// The next thing to do.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests;
