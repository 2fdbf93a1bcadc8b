//! `<service binary> healthcheck [PATH]`: the container health check, run
//! by the image's `HEALTHCHECK` (docs/deploy.md, "Images"). It asks the
//! service's own `GET /healthz` (or PATH: compose waits on `/readyz`) on
//! the address the service listens on (its `HTTP_ADDR`, read as the service
//! reads it) and exits 0 only for a 200, so the image needs neither a shell
//! nor curl.
//!
//! Blocking std I/O with a timeout on every step: it runs once, in a
//! process of its own, and must never hang a health check.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::ServerConfig;
use crate::health::LIVENESS;

/// The argument that turns a service binary into its own health check.
pub const ARGUMENT: &str = "healthcheck";

/// The longest the connect, the write and the read may each take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Asks `GET path` (`/healthz` when `None`) of the server `config`
/// describes; exit 0 for a 200, 1 (with the reason on stderr) for anything
/// else, 2 for a path that is not one.
pub fn run(service: &str, config: &ServerConfig, path: Option<&str>) -> ExitCode {
    let path = path.unwrap_or(LIVENESS);
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        eprintln!("{service} healthcheck: {path:?} is not a path (e.g. /readyz)");
        return ExitCode::from(2);
    }
    match check(config.http_addr, path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{service} healthcheck: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// Where to reach a server listening on `listen`: an unspecified address
/// (0.0.0.0 or ::, as in a container) is reached on loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

fn check(listen: SocketAddr, path: &str) -> Result<(), String> {
    let addr = reachable(listen);
    let url = format!("http://{addr}{path}");
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let io = |e: std::io::Error| format!("{url}: {e}");
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    // One write: the request goes out in one segment.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    // The status line is all that is read: "HTTP/1.1 200 OK".
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < head.len() && !head[..read].contains(&b'\n') {
        match stream.read(&mut head[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status_line = status_line.lines().next().unwrap_or_default();
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        Some(_) => Err(format!("{url} answered {status_line:?}")),
        None => Err(format!("{url} gave no HTTP answer ({status_line:?})")),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// A one-connection server that answers `answer` after reading the
    /// request's head, on a port of its own.
    fn answering(path: &'static str, answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "the request ended before its head did");
                request.extend_from_slice(&chunk[..n]);
            }
            let head = format!("GET {path} HTTP/1.1\r\n");
            assert!(request.starts_with(head.as_bytes()));
            stream.write_all(answer.as_bytes()).unwrap();
        });
        addr
    }

    #[test]
    fn a_200_from_healthz_is_healthy() {
        let addr = answering("/healthz", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(check(addr, LIVENESS), Ok(()));
    }

    #[test]
    fn another_path_is_asked_when_named() {
        let addr = answering("/readyz", "HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(check(addr, "/readyz"), Ok(()));
    }

    #[test]
    fn any_other_status_is_unhealthy_and_says_what_came() {
        let addr = answering("/readyz", "HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let reason = check(addr, "/readyz").unwrap_err();
        assert!(
            reason.contains("answered \"HTTP/1.1 503 Service Unavailable\""),
            "{reason}"
        );
    }

    #[test]
    fn no_server_is_unhealthy() {
        // A port that was just freed: nothing listens on it.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let reason = check(addr, LIVENESS).unwrap_err();
        assert!(
            reason.starts_with(&format!("cannot connect to http://{addr}/healthz")),
            "{reason}"
        );
    }

    #[test]
    fn a_server_that_never_answers_is_unhealthy_within_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepted by the kernel's backlog, never read nor answered.
        let started = std::time::Instant::now();
        let reason = check(addr, LIVENESS).unwrap_err();
        assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
        assert!(reason.contains("/healthz"), "{reason}");
        drop(listener);
    }

    #[test]
    fn an_unspecified_listen_address_is_reached_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            reachable("[::]:8080".parse().unwrap()),
            "[::1]:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            reachable("10.0.0.5:8083".parse().unwrap()),
            "10.0.0.5:8083".parse::<SocketAddr>().unwrap()
        );
    }
}
