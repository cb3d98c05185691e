//! The local server protects itself: request heads must arrive in time, connections are
//! capped, an answer sent before the body was read closes the connection and says so,
//! and SIGTERM lets in-flight requests finish, flushes the store and exits 0.
//! Real processes and raw sockets; no timing is asserted (the read timeouts below only
//! keep a broken server from hanging the test).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::local_api::{Http, LocalApi};

const SECRET: &str = "sk_local_hardening_test_0123456789abcdef";

/// `local-api --port 0 <args>` with this test's secret key and `env`, once it is ready.
fn start(args: &[&str], env: &[(&str, &str)]) -> LocalApi {
    let env: Vec<(&str, &str)> = [("BACKEND_API_SECRET_KEY", SECRET)]
        .into_iter()
        .chain(env.iter().copied())
        .collect();
    LocalApi::start(Path::new(env!("CARGO_BIN_EXE_local-api")), args, &env)
        .expect("local-api starts")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    stream
}

/// Reads one HTTP/1.1 answer with a content-length: (status, JSON body).
fn read_answer(stream: &mut TcpStream) -> (u16, Value) {
    let (status, _, body) = read_answer_with_headers(stream);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Reads one HTTP/1.1 answer with a content-length: (status, headers lower-cased, body).
fn read_answer_with_headers(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {status_line:?}"));
    let mut length = 0;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().expect("length");
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    (status, headers, body)
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn get(stream: &mut TcpStream, path: &str) -> (u16, Value) {
    write!(stream, "GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").expect("write");
    read_answer(stream)
}

#[test]
fn the_banner_says_the_instance_type_production_by_default() {
    let server = start(&["--in-memory"], &[]);
    let banner = &server.banner;
    assert!(
        banner.iter().any(|l| l.contains("production instance")),
        "{banner:?}"
    );
    let dev = start(&["--in-memory"], &[("INSTANCE_TYPE", "development")]);
    let banner = &dev.banner;
    assert!(
        banner.iter().any(|l| l.contains("development instance")),
        "{banner:?}"
    );
}

/// A secret key the operator set is never printed (the output often ends up in a log
/// store); one the server made up for a local run is, or nobody could use it.
#[test]
fn a_secret_key_that_was_set_is_not_printed() {
    let server = start(&["--in-memory"], &[]);
    let banner = server.banner.join("\n");
    assert!(!banner.contains(SECRET), "{banner}");
    assert!(
        banner.contains("from BACKEND_API_SECRET_KEY (not printed)"),
        "{banner}"
    );
    assert_eq!(server.secret_key, None);
}

#[test]
fn a_request_head_that_never_completes_is_dropped() {
    let server = start(
        &["--in-memory"],
        &[("LOCAL_HEADER_READ_TIMEOUT_SECONDS", "1")],
    );
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /v1/environment HTTP/1.1\r\nhost: localhost\r\n")
        .expect("write");
    // The server closes the connection (an answer, if any, and then end of stream).
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    assert!(
        read.is_ok(),
        "closed by the server, not by our safety timeout: {read:?}"
    );
    // A kept-alive connection left idle is closed the same way.
    let mut idle = connect(server.addr);
    assert_eq!(get(&mut idle, "/v1/environment").0, 200);
    let mut rest = Vec::new();
    assert!(idle.read_to_end(&mut rest).is_ok());
}

#[test]
fn connections_over_the_cap_get_a_clerk_503() {
    let server = start(&["--in-memory"], &[("LOCAL_MAX_CONNECTIONS", "2")]);
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect(server.addr)).collect();
    for stream in &mut held {
        assert_eq!(get(stream, "/v1/environment").0, 200);
    }
    let mut third = connect(server.addr);
    let (status, body) = read_answer(&mut third);
    assert_eq!(status, 503);
    assert_eq!(body["errors"][0]["code"], "service_unavailable");
    // The held connections still work; once one closes, a new one is served.
    assert_eq!(get(&mut held[0], "/v1/environment").0, 200);
    drop(held.pop());
    let served = (0..50).any(|_| {
        let mut s = connect(server.addr);
        write!(s, "GET /v1/environment HTTP/1.1\r\nhost: localhost\r\n\r\n").expect("write");
        let ok = read_answer(&mut s).0 == 200;
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(served, "a freed slot is reused");
}

/// A keep-alive client (hyper's pooled client) sends a 2 MB body: the answer, 413, comes
/// before the body was read and says `Connection: close`, so the client sends its next
/// request on a new connection, and it succeeds.
#[tokio::test]
async fn a_413_says_connection_close_and_a_keep_alive_clients_next_request_succeeds() {
    let server = start(&["--in-memory"], &[]);
    let http = Http::new();
    let environment = format!("{}/v1/environment", server.url());
    // The pool holds a kept-alive connection from here on.
    assert_eq!(http.send("GET", &environment, &[], None).await.status, 200);
    for _ in 0..3 {
        let big = "a".repeat(2 * 1024 * 1024);
        let refused = http
            .send(
                "POST",
                &format!("{}/v1/client", server.url()),
                &[],
                Some(("application/x-www-form-urlencoded", big)),
            )
            .await;
        assert_eq!(refused.status, 413);
        assert_eq!(refused.body["errors"][0]["code"], "request_body_too_large");
        assert_eq!(
            refused
                .headers
                .get("connection")
                .and_then(|v| v.to_str().ok()),
            Some("close")
        );
        let next = http.send("GET", &environment, &[], None).await;
        assert_eq!(next.status, 200, "the next request, on a new connection");
    }
}

/// On the wire: after a kept-alive request, an over-long body is answered 413 with
/// `Connection: close` and the server closes that connection; an answer that reads no
/// body (the OpenAPI document) sent a body says the same. A new connection is served.
#[test]
fn answers_sent_before_the_body_was_read_close_the_connection_and_say_so() {
    let server = start(&["--in-memory"], &[]);
    let mut stream = connect(server.addr);
    assert_eq!(get(&mut stream, "/v1/environment").0, 200);
    let length = 2 * 1024 * 1024;
    write!(
        stream,
        "POST /v1/client HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {length}\r\n\r\n"
    )
    .expect("write head");
    // The body is written beside the read: the server answers before it has read it all,
    // and may close before it is all sent (the writer's error is expected then).
    let mut writer = stream.try_clone().expect("clone");
    let body = std::thread::spawn(move || writer.write_all(&vec![b'a'; length]));
    let (status, headers, _) = read_answer_with_headers(&mut stream);
    assert_eq!(status, 413);
    assert_eq!(header(&headers, "connection"), Some("close"), "{headers:?}");
    // The server closes this connection: end of stream (or a reset, for the unread
    // body), not our safety timeout.
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "nothing more on a closed connection"),
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
    }
    let _ = body.join();

    let mut stream = connect(server.addr);
    write!(
        stream,
        "GET /openapi.yaml HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\n\r\nhello"
    )
    .expect("write");
    let (status, headers, _) = read_answer_with_headers(&mut stream);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "connection"), Some("close"), "{headers:?}");

    let mut fresh = connect(server.addr);
    assert_eq!(get(&mut fresh, "/v1/environment").0, 200);
}

#[test]
fn sigterm_finishes_in_flight_requests_flushes_and_exits_0() {
    let dir = std::env::temp_dir().join(format!("local-api-term-{}", std::process::id()));
    let data_file = dir.join("store.sqlite3");
    let data = data_file.to_string_lossy().to_string();
    let mut server = start(&["--data-file", &data], &[]);

    // A request in flight: its head sent and being handled (the server's `100 Continue`
    // says its handler is reading the body: before that, a stopping server may close the
    // connection as idle), its body half sent.
    let body = r#"{"first_name":"Grace"}"#;
    let mut stream = connect(server.addr);
    write!(
        stream,
        "POST /v1/users HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {SECRET}\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
        body.len(),
    )
    .expect("write");
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).expect("100 Continue");
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    stream
        .write_all(&body.as_bytes()[..10])
        .expect("half the body");

    let killed = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    loop {
        let line = server
            .next_line(Duration::from_secs(60))
            .expect("the server says it is stopping");
        if line.contains("stopping") {
            break;
        }
    }
    // No new connections are taken once stopping.
    // The in-flight request completes.
    stream
        .write_all(&body.as_bytes()[10..])
        .expect("rest of body");
    let (status, user) = read_answer(&mut stream);
    assert_eq!(status, 200, "{user}");
    let id = user["id"].as_str().expect("user id").to_string();

    let exit = server.wait().expect("exit");
    assert_eq!(exit.code(), Some(0));
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "nothing listens any more"
    );
    assert!(
        testkit::fixtures::stored_user(&data_file, &id),
        "the user is in the database"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
