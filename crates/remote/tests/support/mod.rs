//! A scripted HTTP/1.1 server on 127.0.0.1 for the remote crate's tests (endpoint and backends).
//!
//! Built on `std::net::TcpListener` with a minimal parser rather than a server crate, because
//! the tests need to misbehave on purpose: cut a body short, or drop the connection without a
//! reply. One thread per connection (so concurrency is real and observable), keep-alive
//! supported, `Content-Length` and chunked request bodies read, `Expect: 100-continue`
//! answered. Every request is recorded in arrival order; the peak number of requests being
//! handled at once is tracked (a request counts from when it is read until its reply starts
//! being written, so the count never exceeds what the client has in flight).
//!
//! Use: `mod support;` in a test file, then [`TestServer::start`] with a handler, or
//! [`TestServer::scripted`] with a queue of [`Step`]s per path. Dropping the server stops it
//! and closes its connections.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target, query included (`/v1/chat/completions?x=1`).
    pub path: String,
    /// Header names and values as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (panics when it is not: a test failure).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Step {
    /// Status, extra headers, body (`Content-Length` is added).
    Status(u16, Vec<(String, String)>, Vec<u8>),
    /// Status with a JSON body (`Content-Type: application/json`).
    Json(u16, serde_json::Value),
    /// Wait, then do the inner step.
    Delay(Duration, Box<Step>),
    /// A 200 whose `Content-Length` says `declared_len` but only `body` is sent, then the
    /// connection is closed.
    Truncated { declared_len: usize, body: Vec<u8> },
    /// Close the connection without replying.
    Close,
}

impl Step {
    /// `200` with a JSON body.
    pub fn ok(value: serde_json::Value) -> Step {
        Step::Json(200, value)
    }

    /// `status` with a plain-text body.
    pub fn text(status: u16, body: &str) -> Step {
        Step::Status(status, Vec::new(), body.as_bytes().to_vec())
    }

    /// `self`, after `ms` milliseconds.
    pub fn after_ms(self, ms: u64) -> Step {
        Step::Delay(Duration::from_millis(ms), Box::new(self))
    }
}

type Handler = dyn Fn(&Request) -> Step + Send + Sync;

struct Shared {
    handler: Box<Handler>,
    requests: Mutex<Vec<Request>>,
    /// (handling now, peak).
    active: Mutex<(usize, usize)>,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

/// A running server; dropping it stops it.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TestServer {
    /// Starts a server answering every request with `handler`'s step.
    pub fn start(handler: impl Fn(&Request) -> Step + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            active: Mutex::new((0, 0)),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    // Replies are written as head then body: without this, Nagle's
                    // algorithm holds the body for the client's delayed ACK (~40 ms a request).
                    let _ = stream.set_nodelay(true);
                    if let Ok(clone) = stream.try_clone() {
                        lock(&shared.conns).push(clone);
                    }
                    let shared = Arc::clone(&shared);
                    std::thread::spawn(move || serve(stream, &shared));
                }
            })
        };
        TestServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// A queue of steps per path (matched on the path without its query): each request pops
    /// the next step of its path's queue; an empty queue or an unknown path gets `fallback`.
    pub fn scripted(routes: Vec<(&str, Vec<Step>)>, fallback: Step) -> TestServer {
        let queues: HashMap<String, VecDeque<Step>> = routes
            .into_iter()
            .map(|(p, steps)| (p.to_string(), steps.into()))
            .collect();
        let queues = Mutex::new(queues);
        TestServer::start(move |req| {
            let path = req.path.split('?').next().unwrap_or_default();
            lock(&queues)
                .get_mut(path)
                .and_then(VecDeque::pop_front)
                .unwrap_or_else(|| fallback.clone())
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// The peak number of requests handled at once.
    pub fn max_concurrent(&self) -> usize {
        lock(&self.shared.active).1
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the acceptor
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for c in lock(&self.shared.conns).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// Serves one connection until it closes, fails, or a step closes it.
fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok(Some(req)) = read_request(&mut reader, &mut out) else {
            break;
        };
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        lock(&shared.requests).push(req.clone());
        {
            let mut a = lock(&shared.active);
            a.0 += 1;
            a.1 = a.1.max(a.0);
        }
        let mut step = (shared.handler)(&req);
        while let Step::Delay(d, inner) = step {
            std::thread::sleep(d);
            step = *inner;
        }
        lock(&shared.active).0 -= 1;
        let keep = write_step(&mut out, step, close).unwrap_or(false);
        if !keep {
            break;
        }
    }
    let _ = out.shutdown(Shutdown::Both);
}

/// Writes a (delay-free) step; returns whether the connection stays open.
fn write_step(out: &mut TcpStream, step: Step, close: bool) -> std::io::Result<bool> {
    let (status, mut headers, body) = match step {
        Step::Status(s, h, b) => (s, h, b),
        Step::Json(s, v) => (
            s,
            vec![("Content-Type".into(), "application/json".into())],
            serde_json::to_vec(&v).expect("JSON serializes"),
        ),
        Step::Truncated { declared_len, body } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {declared_len}\r\nConnection: close\r\n\r\n"
            );
            out.write_all(head.as_bytes())?;
            out.write_all(&body)?;
            out.flush()?;
            return Ok(false);
        }
        Step::Close => return Ok(false),
        Step::Delay(..) => unreachable!("delays are resolved before writing"),
    };
    if close {
        headers.push(("Connection".into(), "close".into()));
    }
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    out.write_all(head.as_bytes())?;
    out.write_all(&body)?;
    out.flush()?;
    Ok(!close)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Reads one request; `None` at a clean end of the connection.
fn read_request(
    r: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(bad("malformed request line"));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed in headers"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').ok_or_else(|| bad("malformed header"))?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let mut req = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        req.body = vec![0; len];
        r.read_exact(&mut req.body)?;
    } else if req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        req.body = read_chunked(r)?;
    }
    Ok(Some(req))
}

fn read_chunked(r: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        line.clear();
        r.read_line(&mut line)?; // the CRLF after the chunk
    }
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// A URL on 127.0.0.1 where nothing listens (connections are refused).
pub fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}
