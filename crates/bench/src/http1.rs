//! A minimal HTTP/1.1 keep-alive client over a raw `TcpStream`.
//!
//! The load generator must cost as little as possible per request: it shares a 2-core
//! machine with the server under test, and the hello ceiling is only a ceiling if the
//! client is not the bottleneck first. So requests are prebuilt bytes, replies are parsed
//! in place (status line, `Content-Length`, the few headers a workload reads) and the read
//! buffer is reused. Every server measured here answers with `Content-Length`; anything
//! else is an error, not something to support. After a `101`, the same buffer reads
//! WebSocket frames ([`Conn::read_frame`]).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` that belong to replies already handed out.
    consumed: usize,
}

/// A WebSocket frame, borrowed from the connection's buffer until the next read.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The opcode.
    pub opcode: u8,
    /// The payload, unmasked.
    pub payload: &'a [u8],
}

/// A reply, borrowed from the connection's buffer until the next read.
#[derive(Debug)]
pub struct Reply<'a> {
    /// The status code.
    pub status: u16,
    head: &'a [u8],
    /// The body, exactly `Content-Length` bytes.
    pub body: &'a [u8],
}

impl Reply<'_> {
    /// The first header named `name` (any casing), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        let head = std::str::from_utf8(self.head).ok()?;
        head.split("\r\n").skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as text (lossy), for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body).into_owned()
    }
}

impl Conn {
    /// Connects with `TCP_NODELAY`, as the servers do.
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            consumed: 0,
        })
    }

    /// Sends one request and reads its reply.
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<Reply<'_>> {
        self.send(request).await?;
        self.read_reply().await
    }

    /// Writes bytes: one request, or several back to back (pipelining).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Sends a request head, then a large body shared by every connection, and reads the
    /// reply.
    pub async fn exchange_with_body(&mut self, head: &[u8], body: &[u8]) -> io::Result<Reply<'_>> {
        self.stream.write_all(head).await?;
        self.stream.write_all(body).await?;
        self.read_reply().await
    }

    /// Reads the next reply, leaving any bytes of later (pipelined) replies in the buffer.
    pub async fn read_reply(&mut self) -> io::Result<Reply<'_>> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        let (head_len, body_len) = loop {
            if let Some(lens) = parse_head(&self.buf)? {
                break lens;
            }
            self.fill(0).await?;
        };
        while self.buf.len() < head_len + body_len {
            self.fill(head_len + body_len).await?;
        }
        self.consumed = head_len + body_len;
        let head = &self.buf[..head_len];
        let status = parse_status(head)?;
        Ok(Reply {
            status,
            head,
            body: &self.buf[head_len..head_len + body_len],
        })
    }

    /// Reads the next WebSocket frame (after a `101`), unmasking it if the server masked it.
    pub async fn read_frame(&mut self) -> io::Result<Frame<'_>> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        let head = loop {
            if let Some(head) = crate::ws::parse_frame_head(&self.buf) {
                break head;
            }
            self.fill(0).await?;
        };
        let end = head.head_len + head.payload_len;
        while self.buf.len() < end {
            self.fill(end).await?;
        }
        self.consumed = end;
        let payload = &mut self.buf[head.head_len..end];
        if let Some(mask) = head.mask {
            crate::ws::apply_mask(payload, mask);
        }
        Ok(Frame {
            opcode: head.opcode,
            payload,
        })
    }

    /// Reads what the socket has, with room for at least 8 KiB, or for the rest of a
    /// message of `want` bytes in all (up to 1 MiB), so a large body is read in a few large
    /// reads rather than many small ones.
    async fn fill(&mut self, want: usize) -> io::Result<()> {
        let room = want.saturating_sub(self.buf.len()).clamp(8 * 1024, 1 << 20);
        self.buf.reserve(room);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(())
    }
}

/// `(head length including the blank line, Content-Length)` once the whole head is in.
fn parse_head(buf: &[u8]) -> io::Result<Option<(usize, usize)>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("reply head is not UTF-8"))?;
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.trim().parse().map_err(|_| bad("bad Content-Length"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked reply; the benchmark expects Content-Length"));
        }
    }
    // Replies without a body (302 from hyper always carries `Content-Length: 0`, but be
    // lenient with 204/304) count as empty.
    Ok(Some((end + 4, length.unwrap_or(0))))
}

fn parse_status(head: &[u8]) -> io::Result<u16> {
    head.get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))
}

fn bad(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_by_content_length() {
        let reply = b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1";
        assert_eq!(parse_head(reply).unwrap(), Some((43, 3)));
        assert_eq!(parse_status(reply).unwrap(), 201);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }
}
