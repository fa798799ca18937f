//! Who decides a login: the users file and RADIUS, asked in `[auth] order`;
//! the next one only when the one before cannot answer (every RADIUS
//! server silent; the user not in the users file). A session asks
//! [`decide`] in a task of its own and gets the answer through its driver's
//! wake-up (event out, decision in: the PPP engine stays sans-IO).

use std::net::IpAddr;
use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::config::AuthSource;
use crate::server::radius::auth::{self as rauth, Authz};
use crate::server::radius::Outcome;
use crate::server::Shared;

/// The answer to one `AuthRequest`.
pub struct Decision {
    pub id: ppp::AuthRequestId,
    pub method: ppp::AuthMethod,
    pub verdict: ppp::Verdict,
    /// From a RADIUS Access-Accept.
    pub authz: Option<Authz>,
}

/// True when the users file alone decides, synchronously.
pub fn users_only(shared: &Shared) -> bool {
    shared.auth_order()[..] == [AuthSource::Users]
}

/// Asks each source in order (see the module docs) and logs the outcome.
pub async fn decide(shared: Arc<Shared>, req: ppp::AuthRequest, peer: IpAddr) -> Decision {
    let order = shared.auth_order();
    for (i, src) in order.iter().enumerate() {
        let last = i + 1 == order.len();
        match src {
            AuthSource::Users => {
                if !last && !shared.users.contains(&req.username) {
                    continue;
                }
                let verdict = shared.users.verify(&req.username, &req.proof);
                info!(user = %req.username, method = %req.method, source = %"users", accepted = verdict.is_accept(), "authentication");
                return Decision {
                    id: req.id,
                    method: req.method,
                    verdict,
                    authz: None,
                };
            }
            AuthSource::Radius => {
                let Some(r) = &shared.radius else { continue };
                let settings = r.settings();
                let request = rauth::access_request(&settings, &req, peer);
                match r.ask(request).await {
                    Outcome::Reply(reply) => {
                        let (verdict, authz) = rauth::verdict(&reply, &req.proof);
                        if verdict.is_pending() {
                            debug!(user = %req.username, "RADIUS Access-Challenge relayed (EAP pass-through)");
                        } else {
                            info!(user = %req.username, method = %req.method, source = %"radius", accepted = verdict.is_accept(), "authentication");
                        }
                        return Decision {
                            id: req.id,
                            method: req.method,
                            verdict,
                            authz,
                        };
                    }
                    Outcome::NoResponse => {
                        let servers: Vec<String> = settings
                            .servers
                            .iter()
                            .map(|s| s.auth.to_string())
                            .collect();
                        warn!(
                            user = %req.username,
                            servers = %servers.join(","),
                            timeout_s = settings.timeout.as_secs(),
                            next = %if last { "none: login refused" } else { "users file" },
                            "no RADIUS server answered the login"
                        );
                    }
                }
            }
        }
    }
    Decision {
        id: req.id,
        method: req.method,
        verdict: ppp::Verdict::reject("Authentication service unavailable"),
        authz: None,
    }
}
