//! PPP stack (sans-IO): LCP, authentication, IPCP, IPv6CP.
