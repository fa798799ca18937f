//! A website sharing the server's :443 (`[web]`), end to end in network
//! namespaces: a small HTTP + WebSocket backend (python3's stdlib, in the
//! test), an HTTPS site of its own (`openssl s_server`) reached by SNI
//! passthrough, curl and a WebSocket client from the client namespace, and
//! an SSTP session on the same port at the same time.

mod e2e;

use e2e::*;
use std::time::Duration;

const SERVER_TUN: &str = "10.44.0.1";

/// HTTP backend: answers every request with the forwarding fields it got;
/// a WebSocket upgrade (RFC 6455 §4.2.2) gets 101 and an echo of frames.
const BACKEND: &str = r#"
import base64, hashlib, socket, sys, threading
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
def handle(c):
    f = c.makefile("rb")
    lines = []
    while True:
        l = f.readline()
        if not l or l in (b"\r\n", b"\n"):
            break
        lines.append(l.decode("latin1").rstrip("\r\n"))
    hdr = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdr[k.strip().lower()] = v.strip()
    if hdr.get("upgrade", "").lower() == "websocket":
        acc = base64.b64encode(hashlib.sha1((hdr["sec-websocket-key"] + GUID).encode()).digest()).decode()
        c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())
        while True:
            h = f.read(2)
            if len(h) < 2:
                break
            op, n = h[0] & 0x0F, h[1] & 0x7F
            mask = f.read(4) if h[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(f.read(n)))
            if op == 8:
                break
            c.sendall(bytes([0x80 | op, len(data)]) + data)
    elif lines:
        body = ("backend page %s xff=%s proto=%s forwarded=%s connection=%s\n" % (
            lines[0].split(" ")[1], hdr.get("x-forwarded-for"), hdr.get("x-forwarded-proto"),
            hdr.get("forwarded"), hdr.get("connection"))).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    f.close()
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

/// WebSocket client over TLS (certificate not checked: the test server's is
/// self-signed): prints the status line and the echoed message.
const WS_CLIENT: &str = r#"
import base64, os, socket, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection((sys.argv[1], 443), timeout=10))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /chat HTTP/1.1\r\nHost: www.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(4096)
    if not d:
        break
    buf += d
head, _, buf = buf.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
msg = b"echo through port 443"
mask = os.urandom(4)
s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
while len(buf) < 2 + len(msg):
    d = s.recv(4096)
    if not d:
        break
    buf += d
print("echo:", buf[2:2 + len(msg)].decode())
"#;

/// curl from client namespace 0: (status, headers, body).
fn curl(lab: &Lab, extra: &[&str], url: &str) -> (String, String, String) {
    let out = lab.clients[0]
        .command("curl")
        .args(["-sk", "--max-time", "10", "-D", "-", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    let (headers, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    (code.to_string(), headers.to_string(), body.to_string())
}

fn start_backend(lab: &Lab, port: u16) -> Proc {
    let script = lab.write_file("backend.py", BACKEND);
    let mut cmd = lab.server.command("python3");
    cmd.arg(&script).arg(port.to_string());
    let mut p = Proc::spawn(cmd, lab.dir.path().join("backend.log"), "backend");
    p.wait_log("listening", 10);
    p
}

/// The backend's page through :443 with the client's address, a WebSocket
/// echo, an SNI-passthrough site with its own certificate, and an SSTP
/// session on the same port all at once; then the backend goes down: 502.
#[test]
fn website_websocket_sni_passthrough_and_sstp_on_one_port() {
    let lab = Lab::new(1);
    let d = lab.dir.path();
    let backend = start_backend(&lab, 8080);
    // The other HTTPS site, with its own certificate.
    let (_, www_fp) = self_signed_server_cert(d, "www", "www.example.test");
    let mut s_server = lab.server.command("openssl");
    s_server
        .current_dir(d)
        .args(["s_server", "-accept", "127.0.0.1:8443", "-www"])
        .args(["-cert", "www.crt", "-key", "www.key"]);
    let _s_server = Proc::spawn(s_server, d.join("s_server.log"), "openssl s_server");
    wait_listening(&lab.server, 8443, 10, "openssl s_server");
    let conf = lab.write_file(
        "web.toml",
        "[web]\nbackend = \"127.0.0.1:8080\"\nsni_passthrough = { \"www.example.test\" = \"127.0.0.1:8443\" }\n",
    );
    let conf = conf.to_str().unwrap();
    let mut server = lab.start_server(&["--config", conf]);

    // SSTP on the same port, up before and still up after the web traffic.
    let fp = lab.fingerprint();
    let client = lab.start_client(0, "vpn", &lab.password(), &["--pin-sha256", &fp]);
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "{}\n{}",
        client.output(),
        server.output()
    );

    let url = format!("https://{}/hello?x=1", lab.server_addr(0));
    let (code, _, body) = curl(&lab, &[], &url);
    let me = lab.client_addr(0);
    assert_eq!(code, "200", "{body}\n{}", server.output());
    assert_eq!(
        body.trim(),
        format!(
            "backend page /hello?x=1 xff={me} proto=https forwarded=for={me};proto=https connection=close"
        )
    );
    // A client's own X-Forwarded-For is not believed.
    let (_, _, body) = curl(&lab, &["-H", "X-Forwarded-For: 6.6.6.6"], &url);
    assert!(body.contains(&format!("xff={me} ")), "{body}");

    let ws = lab.write_file("ws.py", WS_CLIENT);
    let out = lab.clients[0]
        .command("python3")
        .arg(&ws)
        .arg(lab.server_addr(0))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("HTTP/1.1 101 Switching Protocols")
            && text.contains("echo: echo through port 443"),
        "{text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.output()
    );

    // SNI passthrough: the other site's certificate, its own page.
    let resolve = format!("www.example.test:443:{}", lab.server_addr(0));
    let certs = lab.clients[0]
        .command("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {}:443 -servername www.example.test </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
            lab.server_addr(0)
        ))
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&certs.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(seen, www_fp, "the passthrough site's own certificate");
    assert_ne!(seen, fp);
    let (code, _, body) = curl(&lab, &["--resolve", &resolve], "https://www.example.test/");
    assert_eq!(code, "200");
    assert!(body.contains("s_server"), "openssl's -www page: {body}");

    // Still the same SSTP session.
    assert_eq!(ping_count(&lab.clients[0], SERVER_TUN, 2), 2);

    // Backend down: 502 from a page that looks like a web server's.
    drop(backend);
    assert!(wait_until(Duration::from_secs(10), || !listening(
        &lab.server,
        8080
    )));
    let (code, headers, body) = curl(&lab, &[], &url);
    assert_eq!(code, "502", "{headers}\n{body}");
    assert!(headers.contains("Server: nginx"), "{headers}");
    assert!(!body.contains("tunnel443"), "{body}");
    assert!(server.wait_for_output("web backend unreachable; 502", 5));
}

/// Behind haproxy (TLS terminated there, PROXY protocol v2 to our
/// plain-HTTP listener): the backend learns the real client's address from
/// the PROXY header, not the balancer's.
#[test]
fn behind_haproxy_the_backend_sees_the_real_client() {
    let lab = Lab::new(1);
    let d = lab.dir.path();
    let _backend = start_backend(&lab, 8081);
    let (lb_pem, fp) = self_signed_server_cert(d, "lb", "lb.test");
    let users = d.join("users");
    add_user(&users, "carol", "pa55-w0rd", false);
    let conf = lab.write_file(
        "web.toml",
        &format!(
            "listen = \"127.0.0.1:8080\"\nusers_file = \"{}\"\n[tls]\nplain_http = true\ncert_sha256 = \"{fp}\"\nproxy_protocol = true\n[web]\nbackend = \"127.0.0.1:8081\"\n",
            users.display()
        ),
    );
    let mut srv = lab.server.command(BIN);
    srv.args(["server", "--config"]).arg(&conf);
    let mut server = Proc::spawn(srv, d.join("server.log"), "server");
    assert!(
        server.wait_for_output("server started", 20),
        "{}",
        server.output()
    );
    std::fs::write(
        d.join("haproxy.cfg"),
        format!(
            "global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n\
             frontend f\n  bind {}:443 ssl crt {}\n  default_backend b\nbackend b\n  server s 127.0.0.1:8080 send-proxy-v2\n",
            lab.server_addr(0),
            lb_pem.display()
        ),
    )
    .unwrap();
    let mut hp = lab.server.command("haproxy");
    hp.args(["-db", "-f"]).arg(d.join("haproxy.cfg"));
    let _haproxy = Proc::spawn(hp, d.join("haproxy.log"), "haproxy");
    wait_listening(&lab.server, 443, 10, "haproxy");
    let (code, _, body) = curl(&lab, &[], &format!("https://{}/page", lab.server_addr(0)));
    let me = lab.client_addr(0);
    assert_eq!(code, "200", "{body}\n{}", server.output());
    assert!(
        body.contains(&format!(
            "xff={me} proto=https forwarded=for={me};proto=https"
        )),
        "{body}"
    );
}

/// Without a backend: an ordinary-looking 404 with the configured Server
/// field; with `[sstp] host`, SSTP for another name gets the website too.
#[test]
fn no_backend_404_and_sstp_only_on_its_host() {
    let lab = Lab::new(1);
    let conf = lab.write_file(
        "web.toml",
        "[sstp]\nhost = \"vpn.example.test\"\n[web]\nserver_header = \"Apache\"\n",
    );
    let server = lab.start_server(&["--config", conf.to_str().unwrap()]);
    let (code, headers, body) = curl(&lab, &[], &format!("https://{}/", lab.server_addr(0)));
    assert_eq!(code, "404", "{headers}\n{body}\n{}", server.output());
    assert!(headers.contains("Server: Apache"), "{headers}");
    assert!(body.contains("<h1>404 Not Found</h1>"), "{body}");
    assert!(!body.contains("tunnel443") && !headers.contains("tunnel443"));
    // The load balancers' health check still answers.
    let (code, _, _) = curl(
        &lab,
        &["-I"],
        &format!(
            "https://{}/sra_%7BBA195980-CD49-458b-9E23-C84EE0ADCD75%7D/",
            lab.server_addr(0)
        ),
    );
    assert_eq!(code, "200");
    // A client that names the server by address is not asking for the
    // SSTP host: it gets the website's 404.
    let fp = lab.fingerprint();
    let mut client = lab.start_client(0, "vpn", &lab.password(), &["--pin-sha256", &fp]);
    let log = client.wait_log("HTTP 404", 20);
    assert!(!log.contains("Call Connected"), "{log}");
    drop(client);
    // By its name (Host header and SNI), the VPN answers.
    let hosts = HostsFile::new(
        &lab.clients[0],
        &format!("{} vpn.example.test\n", lab.server_addr(0)),
    );
    let mut cmd = lab.clients[0].command(BIN);
    let pwf = lab.write_file("pw", &lab.password());
    cmd.args(["client", "sstp://vpn@vpn.example.test", "--pin-sha256", &fp])
        .arg("--password-file")
        .arg(&pwf);
    let named = Proc::spawn(cmd, lab.dir.path().join("named.log"), "client");
    assert!(
        wait_ping(&lab.clients[0], SERVER_TUN, 30),
        "{}\n{}",
        named.output(),
        server.output()
    );
    drop(named);
    drop(hosts);
}

/// `/etc/netns/NS/hosts`, which `ip netns exec` puts over `/etc/hosts` for
/// the commands run in that namespace; removed on drop.
struct HostsFile(std::path::PathBuf);

impl HostsFile {
    fn new(ns: &Netns, text: &str) -> Self {
        let dir = std::path::Path::new("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), format!("127.0.0.1 localhost\n{text}")).unwrap();
        HostsFile(dir)
    }
}

impl Drop for HostsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
