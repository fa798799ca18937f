use super::*;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn drain(link: &mut Link) -> Vec<Event> {
    std::iter::from_fn(|| link.poll_event()).collect()
}

fn no_attempt_timeout() -> LinkConfig {
    LinkConfig {
        attempt_timeout: None,
        ..LinkConfig::default()
    }
}

/// Runs `n` consecutive failing attempts, each failing `t` after it starts,
/// from an initialized link; returns the reconnect timeouts chosen and the
/// start time of each retry relative to the first failure.
fn failing_run(t: Duration, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let t0 = Instant::now();
    let mut link = Link::new(no_attempt_timeout());
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    assert_eq!(drain(&mut link), vec![Event::Connect { attempt: 1 }]);
    let mut now = t0 + t;
    let first_failure = now;
    let mut timeouts = Vec::new();
    let mut starts = Vec::new();
    for i in 0..n {
        link.link_failed(now, Failure::Connect).unwrap();
        assert_eq!(link.state(), LinkState::LinkDown);
        let ev = drain(&mut link);
        let Some(&Event::ReconnectScheduled { at, after }) = ev.last() else {
            panic!("no reconnect scheduled: {ev:?}");
        };
        assert_eq!(ev[0], Event::Close);
        assert_eq!(at, now + after);
        assert_eq!(link.poll_timeout(), Some(at));
        timeouts.push(after);
        // Nothing happens a moment before the timer.
        link.handle_timeout(at - Duration::from_millis(1));
        assert_eq!(link.poll_event(), None);
        now = at;
        link.handle_timeout(now);
        assert_eq!(
            drain(&mut link),
            vec![Event::Connect {
                attempt: i as u64 + 2
            }]
        );
        starts.push(now - first_failure);
        now += t;
    }
    (timeouts, starts)
}

#[test]
fn reconnect_sequence_with_instant_failures_is_the_spec_list() {
    // §3.1.2.1 with T = 0: 30, 30, 60, 120, 240, 480, then 15 min forever.
    let (timeouts, starts) = failing_run(Duration::ZERO, 10);
    let want: Vec<Duration> = [30, 30, 60, 120, 240, 480, 900, 900, 900, 900]
        .into_iter()
        .map(s)
        .collect();
    assert_eq!(timeouts, want);
    let want_starts: Vec<Duration> = [30, 60, 120, 240, 480, 960, 1860, 2760, 3660, 4560]
        .into_iter()
        .map(s)
        .collect();
    assert_eq!(starts, want_starts);
}

#[test]
fn reconnect_sequence_with_slow_failures() {
    // Each attempt takes T = 7 s to fail. The timeout is the time elapsed
    // since the first failure: 30, 30+T (as the spec lists), then 60+3T,
    // 120+7T, 240+15T, 480+31T = 697, then capped at 900.
    let t = 7;
    let (timeouts, starts) = failing_run(s(t), 9);
    let want: Vec<Duration> = [
        30,
        30 + t,
        60 + 3 * t,
        120 + 7 * t,
        240 + 15 * t,
        480 + 31 * t,
        900,
        900,
        900,
    ]
    .into_iter()
    .map(s)
    .collect();
    assert_eq!(timeouts, want);
    // Attempts start 30 and 60+2T after the first failure, the first two
    // retries of the spec's list.
    assert_eq!(&starts[..2], &[s(30), s(60 + 2 * t)]);
}

#[test]
fn cap_holds_for_very_slow_failures() {
    let (timeouts, _) = failing_run(s(2000), 4);
    assert_eq!(timeouts, vec![s(30), s(900), s(900), s(900)]);
}

#[test]
fn success_resets_the_backoff() {
    let t0 = Instant::now();
    let mut link = Link::new(no_attempt_timeout());
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    let mut now = t0;
    // Three failures: 30, 30, 60.
    for want in [30, 30, 60] {
        link.link_failed(now, Failure::Tls).unwrap();
        assert_eq!(link.next_reconnect(), Some(now + s(want)));
        now += s(want);
        link.handle_timeout(now);
    }
    drain(&mut link);
    link.transport_connected().unwrap();
    link.tls_established().unwrap();
    assert_eq!(link.state(), LinkState::Established);
    assert_eq!(drain(&mut link), vec![Event::SendRequest]);
    link.http_ok(now).unwrap();
    assert_eq!(link.state(), LinkState::LinkUp);
    // Hours later the link breaks: a first failure again.
    now += s(5 * 3600);
    link.link_failed(now, Failure::Closed).unwrap();
    assert_eq!(
        drain(&mut link),
        vec![
            Event::LinkUp,
            Event::SendRouterSolicitation,
            Event::LinkDown {
                reason: Failure::Closed
            },
            Event::Close,
            Event::ReconnectScheduled {
                at: now + s(30),
                after: s(30)
            },
        ]
    );
    assert_eq!(link.last_failure(), Some(Failure::Closed));
}

#[test]
fn tls_alone_does_not_reset_the_backoff() {
    let t0 = Instant::now();
    let mut link = Link::new(no_attempt_timeout());
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    link.link_failed(t0, Failure::Connect).unwrap();
    link.handle_timeout(t0 + s(30));
    link.transport_connected().unwrap();
    link.tls_established().unwrap();
    // 404 from the server at t0 + 31 s: elapsed 31 s, not a fresh 30 s.
    link.link_failed(t0 + s(31), Failure::Http(Some(404)))
        .unwrap();
    assert_eq!(link.next_reconnect(), Some(t0 + s(62)));
}

#[test]
fn states_follow_section_3_1_1() {
    let t0 = Instant::now();
    let mut link = Link::new(LinkConfig::default());
    assert_eq!(link.state(), LinkState::Disabled);
    assert!(link.initialize(t0).is_err());
    link.enable().unwrap();
    assert_eq!(link.state(), LinkState::Enabled);
    assert_eq!(
        link.enable(),
        Err(LinkError::Unexpected {
            event: "enable",
            state: LinkState::Enabled
        })
    );
    assert!(link.tls_established().is_err());
    link.initialize(t0).unwrap();
    assert_eq!(link.state(), LinkState::LinkDown);
    assert!(!link.transport_up());
    assert!(link.http_ok(t0).is_err(), "no 200 before the request");
    link.transport_connected().unwrap();
    assert!(link.transport_up());
    assert_eq!(link.state(), LinkState::LinkDown);
    link.tls_established().unwrap();
    assert_eq!(link.state(), LinkState::Established);
    link.http_ok(t0).unwrap();
    assert_eq!(link.state(), LinkState::LinkUp);
    assert!(link.tls_established().is_err());
    link.disable();
    assert_eq!(link.state(), LinkState::Disabled);
    assert_eq!(link.poll_timeout(), None);
    let ev = drain(&mut link);
    assert_eq!(
        &ev[ev.len() - 2..],
        &[
            Event::LinkDown {
                reason: Failure::Other
            },
            Event::Close
        ]
    );
    // Stale reports after disabling are refused and change nothing.
    assert!(link.link_failed(t0, Failure::Closed).is_err());
    assert_eq!(link.poll_event(), None);
    link.disable();
    assert_eq!(link.poll_event(), None);
}

#[test]
fn failure_while_waiting_is_stale() {
    let t0 = Instant::now();
    let mut link = Link::new(no_attempt_timeout());
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    link.link_failed(t0, Failure::Connect).unwrap();
    let at = link.next_reconnect();
    assert!(link.link_failed(t0 + s(5), Failure::Connect).is_err());
    assert_eq!(
        link.next_reconnect(),
        at,
        "a duplicate report must not re-arm"
    );
}

#[test]
fn disable_while_waiting_cancels_the_timer_and_forgets_the_backoff() {
    let t0 = Instant::now();
    let mut link = Link::new(no_attempt_timeout());
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    link.link_failed(t0, Failure::Connect).unwrap();
    link.handle_timeout(t0 + s(30));
    link.link_failed(t0 + s(31), Failure::Connect).unwrap();
    drain(&mut link);
    link.disable();
    assert_eq!(link.poll_event(), None, "no transport to close");
    link.handle_timeout(t0 + s(100));
    assert_eq!(link.poll_event(), None);
    link.enable().unwrap();
    link.initialize(t0 + s(200)).unwrap();
    link.link_failed(t0 + s(200), Failure::Connect).unwrap();
    assert_eq!(link.next_reconnect(), Some(t0 + s(230)));
}

#[test]
fn attempt_timeout_counts_as_failure() {
    let t0 = Instant::now();
    let mut link = Link::new(LinkConfig {
        attempt_timeout: Some(s(20)),
        ..LinkConfig::default()
    });
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    link.transport_connected().unwrap();
    link.tls_established().unwrap();
    drain(&mut link);
    assert_eq!(link.poll_timeout(), Some(t0 + s(20)));
    link.handle_timeout(t0 + s(20));
    assert_eq!(link.last_failure(), Some(Failure::AttemptTimeout));
    assert_eq!(
        drain(&mut link),
        vec![
            Event::Close,
            Event::ReconnectScheduled {
                at: t0 + s(50),
                after: s(30)
            }
        ]
    );
    // The retry gets a fresh attempt timer, cleared once the link is up.
    link.handle_timeout(t0 + s(50));
    assert_eq!(link.poll_timeout(), Some(t0 + s(70)));
    link.tls_established().unwrap();
    link.http_ok(t0 + s(51)).unwrap();
    assert_eq!(link.poll_timeout(), Some(t0 + s(55)), "only the RS timer");
}

#[test]
fn router_solicitations_at_link_up() {
    let t0 = Instant::now();
    let mut link = Link::new(no_attempt_timeout());
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    link.tls_established().unwrap();
    link.http_ok(t0).unwrap();
    assert_eq!(
        drain(&mut link),
        vec![
            Event::Connect { attempt: 1 },
            Event::SendRequest,
            Event::LinkUp,
            Event::SendRouterSolicitation
        ]
    );
    // No RA: two more at 4 s intervals, then silence.
    for k in 1..=2u64 {
        assert_eq!(link.poll_timeout(), Some(t0 + s(4 * k)));
        link.handle_timeout(t0 + s(4 * k));
        assert_eq!(drain(&mut link), vec![Event::SendRouterSolicitation]);
    }
    assert_eq!(link.poll_timeout(), None);

    // An RA stops them.
    let mut link = Link::new(no_attempt_timeout());
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    link.tls_established().unwrap();
    link.http_ok(t0).unwrap();
    link.router_advert_received().unwrap();
    assert_eq!(link.poll_timeout(), None);
    link.handle_timeout(t0 + s(8));
    assert_eq!(
        drain(&mut link).last(),
        Some(&Event::SendRouterSolicitation)
    );
    assert!(link.router_advert_received().is_ok(), "later RAs are fine");

    // Solicitations can be switched off.
    let mut link = Link::new(LinkConfig {
        max_solicitations: 0,
        attempt_timeout: None,
        ..LinkConfig::default()
    });
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    link.tls_established().unwrap();
    link.http_ok(t0).unwrap();
    assert!(!drain(&mut link).contains(&Event::SendRouterSolicitation));
    assert_eq!(link.poll_timeout(), None);
}

/// A two-party simulation on a virtual clock: a server that is down until
/// `up_at`, attempts that take 2 s to fail while it is down and 1 s to
/// succeed once it is up. The client must come up on the first retry after
/// `up_at`, at the time the §3.1.2.1 timer dictates.
#[test]
fn simulated_outage_then_recovery() {
    let t0 = Instant::now();
    let up_at = t0 + s(400);
    let mut link = Link::new(LinkConfig::default());
    link.enable().unwrap();
    link.initialize(t0).unwrap();
    let mut now = t0;
    let mut log = Vec::new();
    for _ in 0..1000 {
        match link.poll_event() {
            Some(Event::Connect { attempt }) => {
                log.push((now - t0, attempt));
                if now < up_at {
                    now += s(2);
                    link.link_failed(now, Failure::Connect).unwrap();
                } else {
                    now += s(1);
                    link.transport_connected().unwrap();
                    link.tls_established().unwrap();
                }
            }
            Some(Event::SendRequest) => link.http_ok(now).unwrap(),
            Some(Event::LinkUp) => break,
            Some(_) => {}
            None => {
                now = link.poll_timeout().expect("a timer must be running");
                link.handle_timeout(now);
            }
        }
    }
    assert_eq!(link.state(), LinkState::LinkUp);
    // First failure at 2 s. Timeouts 30, 32, 66, 134, 270 (elapsed since
    // 2 s at each failure): attempts at 0, 32, 66, 134, 270, 542.
    let starts: Vec<u64> = log.iter().map(|(d, _)| d.as_secs()).collect();
    assert_eq!(starts, vec![0, 32, 66, 134, 270, 542]);
    assert_eq!(log.last().unwrap().1, 6);
}

#[test]
fn backoff_on_its_own() {
    let t0 = Instant::now();
    let mut b = Backoff::default();
    assert_eq!(b.began(), None);
    assert_eq!(b.on_failure(t0 + s(3)), s(30));
    assert_eq!(b.began(), Some(t0 + s(3)));
    // Never below the initial timeout, even for a quick second report.
    assert_eq!(b.on_failure(t0 + s(4)), s(30));
    assert_eq!(b.on_failure(t0 + s(103)), s(100));
    assert_eq!(b.on_failure(t0 + s(10_003)), s(900));
    b.reset();
    assert_eq!(b.on_failure(t0 + s(20_000)), s(30));
    // A cap below the initial timeout wins.
    let mut tight = Backoff::new(s(30), s(10));
    assert_eq!(tight.on_failure(t0), s(10));
}
