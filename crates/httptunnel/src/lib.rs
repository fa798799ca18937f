//! HTTP/1.1 head parsing and CONNECT client/server logic (sans-IO).
