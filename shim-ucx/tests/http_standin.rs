//! The self-loop program's HTTP mode (`ucx_selfloop --http`), the stand-in service that experiments probe: run under
//! the shim, its answers follow what the `faultline` binary tells the shim, it recovers when the faults stop, and
//! clients that misbehave never stop it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

use serde_json::{json, Value};
use testkit::{Program, ShmDir, WATCHDOG};

fn selfloop() -> PathBuf {
    testkit::c_program("shim-ucx/tests/c/ucx_selfloop.c", &["-lucp", "-lucs"])
}

/// `ucx_selfloop --http 0 --quiet` and `extra` under the shim with injection enabled at 0 %, and the port it
/// listens on.
fn serve(shm: &ShmDir, extra: &[&str]) -> (Program, u16) {
    let mut args = vec!["--http", "0", "--quiet"];
    args.extend_from_slice(extra);
    let env = [("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "0")];
    let mut command = testkit::shimmed(&testkit::artifacts().ucx_shim, shm, &selfloop(), &args, &env);
    command.env("UCX_WARN_UNUSED_ENV_VARS", "n");
    let mut server = Program::spawn(command);
    let line = server.lines_until(|l| l.starts_with("HTTP ")).pop().unwrap();
    let port = line["HTTP ".len()..].parse().unwrap_or_else(|_| panic!("a port: {line:?}"));
    (server, port)
}

/// `faultline --pid <pid> args`, which must succeed.
fn steer(shm: &ShmDir, pid: u32, args: &[&str]) {
    let mut all = vec!["--pid".to_string(), pid.to_string()];
    all.extend(args.iter().map(ToString::to_string));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let output = testkit::faultline(shm, &all);
    assert!(output.status.success(), "faultline {all:?}: {}", String::from_utf8_lossy(&output.stderr));
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    close: bool,
}

/// One HTTP/1.1 connection to the server.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("the server accepts");
        stream.set_read_timeout(Some(WATCHDOG)).unwrap();
        Client { reader: BufReader::new(stream) }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("the server reads");
    }

    /// Sends `method path` with `body` and `headers` (each ending in CRLF) and reads the answer.
    fn request(&mut self, method: &str, path: &str, headers: &str, body: &str) -> Answer {
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n{headers}\r\n", body.len());
        self.write(format!("{head}{body}").as_bytes());
        self.answer()
    }

    fn get(&mut self) -> Answer {
        self.request("GET", "/", "", "")
    }

    fn answer(&mut self) -> Answer {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("an answer");
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        let status = status.unwrap_or_else(|| panic!("a status line: {line:?}"));
        let (mut length, mut close) = (0, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("a header line");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or_else(|| panic!("a header: {header:?}"));
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("a length");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.trim().eq_ignore_ascii_case("close");
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("the whole body");
        let body = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        Answer { status, body, close }
    }

    /// Whether the server closed the connection (after a `Connection: close` answer).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok_and(|_| rest.is_empty())
    }
}

/// The answer to a request whose 3 default ops (put, get, flush: 4 calls) all succeeded.
fn healthy() -> Value {
    json!({"ok": true, "ops": 3, "calls": 4})
}

#[test]
fn answers_200_while_ucx_works_503_with_the_status_while_it_fails_and_200_again_after() {
    let shm = ShmDir::new();
    let (server, port) = serve(&shm, &[]);
    let pid = server.pid();

    let mut client = Client::connect(port);
    for i in 0..20 {
        let answer = if i % 4 == 3 { client.request("POST", "/probe", "", "{\"a\":1}") } else { client.get() };
        assert_eq!((answer.status, &answer.body, answer.close), (200, &healthy(), false), "request {i}");
    }
    let mut once = Client::connect(port);
    let answer = once.request("GET", "/once", "Connection: close\r\n", "");
    assert_eq!((answer.status, &answer.body, answer.close), (200, &healthy(), true));
    assert!(once.closed(), "closed after a Connection: close answer");

    steer(&shm, pid, &["strategy", "X", "--error-codes", "UCS_ERR_IO_ERROR"]);
    steer(&shm, pid, &["enable"]);
    let failed: Vec<Answer> = (0..10).map(|_| client.get()).collect();
    for (i, answer) in failed.iter().enumerate() {
        assert_eq!(answer.status, 503, "request {i} while every call fails: {answer:?}");
        assert_eq!(answer.body["ok"], false, "{answer:?}");
        assert_eq!(answer.body["status"], "UCS_ERR_IO_ERROR", "{answer:?}");
        assert_eq!(answer.body["code"], -3, "{answer:?}");
        assert_eq!(answer.body["message"], "Input/output error", "{answer:?}");
    }
    assert_eq!((&failed[0].body["op"], &failed[0].body["function"]), (&json!("put"), &json!("ucp_put_nbx")));
    // After the first failure the endpoint is re-created, and that fails too: later requests fail reconnecting.
    assert!(failed[1..].iter().all(|a| a.body["op"] == "connect"), "{failed:?}");

    steer(&shm, pid, &["disable"]);
    let first = client.get();
    assert_eq!(first.status, 200, "the first request after the faults stop reconnects and succeeds: {first:?}");
    assert_eq!(first.body["calls"], 8, "4 calls to reconnect, then the 4 of the request: {first:?}");
    for i in 0..10 {
        assert_eq!(client.get().body, healthy(), "request {i} after recovery");
    }
}

#[test]
fn clients_that_disconnect_early_or_send_nonsense_do_not_stop_it() {
    let shm = ShmDir::new();
    let (_server, port) = serve(&shm, &[]);

    drop(Client::connect(port));
    Client::connect(port).write(b"GET / HT");
    Client::connect(port).write(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345");
    // Gone before its answers are written: writing them fails (EPIPE or ECONNRESET), which must only drop it.
    Client::connect(port).write("GET / HTTP/1.1\r\n\r\n".repeat(8).as_bytes());

    let mut nonsense = Client::connect(port);
    nonsense.write(b"hello\r\n\r\n");
    let answer = nonsense.answer();
    assert_eq!((answer.status, answer.close), (400, true), "{answer:?}");
    let chunked = Client::connect(port).request("POST", "/", "Transfer-Encoding: chunked\r\n", "");
    assert_eq!(chunked.status, 501, "{chunked:?}");

    let mut client = Client::connect(port);
    for i in 0..5 {
        assert_eq!(client.get().body, healthy(), "request {i} after the misbehaving clients");
    }
}

#[test]
fn sigterm_or_stdin_eof_with_stdin_stops_it_cleanly() {
    let shm = ShmDir::new();
    let (mut server, port) = serve(&shm, &[]);
    assert_eq!(Client::connect(port).get().status, 200);
    let idle = Client::connect(port);
    server.kill(libc::SIGTERM);
    let summary = server.lines_until(|l| l == "DONE");
    assert!(summary.contains(&"SUMMARY ucp_put_nbx calls=1 failures=0".to_string()), "{summary:?}");
    drop(idle);

    let (server, port) = serve(&shm, &["--stdin"]);
    assert_eq!(Client::connect(port).get().status, 200);
    assert!(server.finish().success(), "stdin EOF ends it with status 0");
}
