//! Attribute numbers: RFC 2865 §5, RFC 2866 §5 (accounting), RFC 2869 §5
//! (extensions), RFC 3162 (IPv6), RFC 3579 §3 (EAP), RFC 4818 (delegated
//! prefix), RFC 5176 §3.5 (Error-Cause); vendor attributes of Microsoft
//! (RFC 2548 §2) and MikroTik.

pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const CHAP_PASSWORD: u8 = 3;
pub const NAS_IP_ADDRESS: u8 = 4;
pub const NAS_PORT: u8 = 5;
pub const SERVICE_TYPE: u8 = 6;
pub const FRAMED_PROTOCOL: u8 = 7;
pub const FRAMED_IP_ADDRESS: u8 = 8;
pub const FRAMED_IP_NETMASK: u8 = 9;
pub const FILTER_ID: u8 = 11;
pub const FRAMED_MTU: u8 = 12;
pub const REPLY_MESSAGE: u8 = 18;
pub const FRAMED_ROUTE: u8 = 22;
pub const STATE: u8 = 24;
pub const CLASS: u8 = 25;
pub const VENDOR_SPECIFIC: u8 = 26;
pub const SESSION_TIMEOUT: u8 = 27;
pub const IDLE_TIMEOUT: u8 = 28;
pub const CALLED_STATION_ID: u8 = 30;
pub const CALLING_STATION_ID: u8 = 31;
pub const NAS_IDENTIFIER: u8 = 32;
pub const PROXY_STATE: u8 = 33;
pub const ACCT_STATUS_TYPE: u8 = 40;
pub const ACCT_DELAY_TIME: u8 = 41;
pub const ACCT_INPUT_OCTETS: u8 = 42;
pub const ACCT_OUTPUT_OCTETS: u8 = 43;
pub const ACCT_SESSION_ID: u8 = 44;
pub const ACCT_AUTHENTIC: u8 = 45;
pub const ACCT_SESSION_TIME: u8 = 46;
pub const ACCT_INPUT_PACKETS: u8 = 47;
pub const ACCT_OUTPUT_PACKETS: u8 = 48;
pub const ACCT_TERMINATE_CAUSE: u8 = 49;
pub const ACCT_MULTI_SESSION_ID: u8 = 50;
pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
pub const EVENT_TIMESTAMP: u8 = 55;
pub const CHAP_CHALLENGE: u8 = 60;
pub const NAS_PORT_TYPE: u8 = 61;
pub const TUNNEL_TYPE: u8 = 64;
pub const EAP_MESSAGE: u8 = 79;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
pub const ACCT_INTERIM_INTERVAL: u8 = 85;
pub const NAS_PORT_ID: u8 = 87;
pub const FRAMED_POOL: u8 = 88;
pub const NAS_IPV6_ADDRESS: u8 = 95;
pub const FRAMED_INTERFACE_ID: u8 = 96;
pub const FRAMED_IPV6_PREFIX: u8 = 97;
pub const FRAMED_IPV6_ROUTE: u8 = 99;
pub const ERROR_CAUSE: u8 = 101;
pub const DELEGATED_IPV6_PREFIX: u8 = 123;

/// Service-Type Framed-User (RFC 2865 §5.6).
pub const SERVICE_FRAMED: u32 = 2;
/// Framed-Protocol PPP (RFC 2865 §5.7).
pub const FRAMED_PPP: u32 = 1;
/// NAS-Port-Type Virtual (RFC 2865 §5.41).
pub const PORT_VIRTUAL: u32 = 5;
/// Framed-IP-Address 255.255.255.254: the NAS picks (from its pool).
pub const FRAMED_IP_NAS_CHOOSES: std::net::Ipv4Addr = std::net::Ipv4Addr::new(255, 255, 255, 254);
/// Framed-IP-Address 255.255.255.255: the user may choose.
pub const FRAMED_IP_USER_CHOOSES: std::net::Ipv4Addr = std::net::Ipv4Addr::new(255, 255, 255, 255);

/// Acct-Status-Type values (RFC 2866 §5.1).
pub mod status {
    pub const START: u32 = 1;
    pub const STOP: u32 = 2;
    pub const INTERIM_UPDATE: u32 = 3;
    pub const ACCOUNTING_ON: u32 = 7;
    pub const ACCOUNTING_OFF: u32 = 8;
}

/// Acct-Terminate-Cause values (RFC 2866 §5.10).
pub mod terminate {
    pub const USER_REQUEST: u32 = 1;
    pub const LOST_CARRIER: u32 = 2;
    pub const LOST_SERVICE: u32 = 3;
    pub const IDLE_TIMEOUT: u32 = 4;
    pub const SESSION_TIMEOUT: u32 = 5;
    pub const ADMIN_RESET: u32 = 6;
    pub const ADMIN_REBOOT: u32 = 7;
    pub const PORT_ERROR: u32 = 8;
    pub const NAS_ERROR: u32 = 9;
    pub const NAS_REQUEST: u32 = 10;
    pub const NAS_REBOOT: u32 = 11;
    pub const SERVICE_UNAVAILABLE: u32 = 15;
    pub const USER_ERROR: u32 = 17;

    /// The RFC's name of a cause (`User-Request`, ...), for logs.
    pub fn name(cause: u32) -> Option<&'static str> {
        Some(match cause {
            USER_REQUEST => "User-Request",
            LOST_CARRIER => "Lost-Carrier",
            LOST_SERVICE => "Lost-Service",
            IDLE_TIMEOUT => "Idle-Timeout",
            SESSION_TIMEOUT => "Session-Timeout",
            ADMIN_RESET => "Admin-Reset",
            ADMIN_REBOOT => "Admin-Reboot",
            PORT_ERROR => "Port-Error",
            NAS_ERROR => "NAS-Error",
            NAS_REQUEST => "NAS-Request",
            NAS_REBOOT => "NAS-Reboot",
            SERVICE_UNAVAILABLE => "Service-Unavailable",
            USER_ERROR => "User-Error",
            _ => return None,
        })
    }
}

/// Error-Cause values (RFC 5176 §3.5).
pub mod error_cause {
    pub const UNSUPPORTED_ATTRIBUTE: u32 = 401;
    pub const MISSING_ATTRIBUTE: u32 = 402;
    pub const INVALID_REQUEST: u32 = 404;
    pub const UNSUPPORTED_SERVICE: u32 = 405;
    pub const SESSION_CONTEXT_NOT_FOUND: u32 = 503;
}

/// Microsoft vendor attributes (RFC 2548 §2), vendor id 311.
pub mod ms {
    pub const VENDOR: u32 = 311;
    pub const CHAP_ERROR: u8 = 2;
    pub const CHAP_MPPE_KEYS: u8 = 12;
    pub const MPPE_ENCRYPTION_POLICY: u8 = 7;
    pub const MPPE_ENCRYPTION_TYPES: u8 = 8;
    pub const CHAP_CHALLENGE: u8 = 11;
    pub const MPPE_SEND_KEY: u8 = 16;
    pub const MPPE_RECV_KEY: u8 = 17;
    pub const CHAP2_RESPONSE: u8 = 25;
    pub const CHAP2_SUCCESS: u8 = 26;
    pub const PRIMARY_DNS_SERVER: u8 = 28;
    pub const SECONDARY_DNS_SERVER: u8 = 29;

    /// MS-CHAP2-Response (RFC 2548 §2.3.2): Ident, Flags, Peer-Challenge,
    /// 8 reserved octets, the 24-octet NT-Response.
    pub fn chap2_response(
        ident: u8,
        peer_challenge: &[u8; 16],
        nt_response: &[u8; 24],
    ) -> [u8; 50] {
        let mut v = [0u8; 50];
        v[0] = ident;
        v[2..18].copy_from_slice(peer_challenge);
        v[26..].copy_from_slice(nt_response);
        v
    }
}

/// MikroTik vendor attributes, vendor id 14988.
pub mod mikrotik {
    pub const VENDOR: u32 = 14988;
    pub const RATE_LIMIT: u8 = 8;
}
