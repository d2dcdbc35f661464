//! Plain HTTP/1.1 requests to a loopback server, one connection each, for
//! tests of `serve`'s pages through the real binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What a server answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// `METHOD path` to `addr` with `Host: host` and an empty body; the whole
/// answer (at most 1 MiB).
pub fn request(addr: SocketAddr, method: &str, host: &str, path: &str) -> Answer {
    request_with(addr, method, host, path, None)
}

/// [`request`] with a body of the given content type.
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Answer {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (kind, bytes) = body.unwrap_or(("", b""));
    let kind = if kind.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {kind}\r\n")
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{kind}Content-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    // A server may answer (413) and close before reading a body it refuses.
    let _ = stream.write_all(bytes);
    let mut response = Vec::new();
    let _ = stream.take(1024 * 1024).read_to_end(&mut response);
    parse_answer(&response)
}

/// A whole HTTP/1.1 answer as read from a connection (plain or TLS).
pub fn parse_answer(response: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(response).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A plain GET; the status code.
pub fn http_status(addr: SocketAddr, host: &str, path: &str) -> u16 {
    request(addr, "GET", host, path).status
}

/// The socket address of a page's URL (`http://IP:PORT/…`).
pub fn page_addr(url: &str) -> SocketAddr {
    url.strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not a page address: {url}"))
}

/// One file of a page's first load: its path, and the bytes of its
/// status line and headers and of its body, as sent (gzipped when the
/// server gzips), and the body as the browser reads it.
#[derive(Debug)]
pub struct Loaded {
    pub path: String,
    pub head_bytes: usize,
    pub body_bytes: usize,
    /// `Content-Encoding`, if the server sent one.
    pub encoding: Option<String>,
    /// The body, decoded.
    pub body: String,
}

/// `GET path` as a browser asks for it (`Accept-Encoding: gzip`); what
/// came, with the body's bytes counted as they were sent (without the
/// chunked framing) and decoded. Panics unless it is a 200.
pub fn fetch_as_browser(addr: SocketAddr, host: &str, path: &str) -> Loaded {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.take(4 * 1024 * 1024).read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no HTTP answer"));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let answer = Answer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0),
        head,
        body: String::new(),
    };
    assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
    let raw = &response[split + 4..];
    let sent = if answer
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        dechunk(raw)
    } else {
        raw.to_vec()
    };
    let encoding = answer.header("content-encoding").map(str::to_owned);
    let body = match encoding.as_deref() {
        Some("gzip") => {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&sent[..])
                .read_to_string(&mut text)
                .unwrap_or_else(|e| panic!("GET {path}: bad gzip: {e}"));
            text
        }
        None => String::from_utf8_lossy(&sent).into_owned(),
        Some(other) => panic!("GET {path}: an encoding no browser asked for: {other}"),
    };
    Loaded {
        path: path.to_owned(),
        head_bytes: answer.head.len() + 4,
        body_bytes: sent.len(),
        encoding,
        body,
    }
}

/// The body of a chunked HTTP/1.1 answer without its framing.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            panic!("a chunk with no size line");
        };
        let size_line = String::from_utf8_lossy(&raw[..end]);
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .unwrap_or_else(|_| panic!("a bad chunk size {size_line:?}"));
        raw = &raw[end + 2..];
        if size == 0 {
            return body;
        }
        assert!(raw.len() >= size + 2, "a cut chunk");
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// What a browser fetches to show the page at `path` the first time,
/// with an empty cache (each with [`fetch_as_browser`]): the page, then
/// every file of this site it names to load (`src="/…"`, and
/// `href="/static/…"` for stylesheets and icons; links to other pages
/// are not loaded), each once. Panics unless each is a 200.
pub fn first_load(addr: SocketAddr, host: &str, path: &str) -> Vec<Loaded> {
    let page = fetch_as_browser(addr, host, path);
    let html = page.body.clone();
    let mut files = vec![page];
    let mut named: Vec<String> = Vec::new();
    for (attribute, loaded) in [("src=\"", "/"), ("href=\"", "/static/")] {
        for (at, _) in html.match_indices(attribute) {
            let value = &html[at + attribute.len()..];
            let file = &value[..value.find('"').unwrap_or(0)];
            if file.starts_with(loaded)
                && !file.starts_with("//")
                && !named.iter().any(|n| n == file)
            {
                named.push(file.to_owned());
            }
        }
    }
    for file in named {
        files.push(fetch_as_browser(addr, host, &file));
    }
    files
}
