//! WebSocket frames at the byte level, as the relay needs them: where messages end in a
//! stream it forwards unchanged, and the few frames the gateway writes itself.
//!
//! The relay must pass every frame through untouched (`permessage-deflate` included, which
//! a decoding library would refuse or re-encode), yet know where one message ends and the
//! next begins, to slip its own notifications in between, and see close frames go by. So
//! [`Scanner`] reads frame headers with tungstenite's own parser
//! ([`FrameHeader::parse`]) and counts payload bytes without copying them; only a close
//! frame's few payload bytes are kept, for its code. Writing uses tungstenite's frames.

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};

/// The longest frame header: two bytes, eight of length, four of mask.
const MAX_HEADER: usize = 14;

/// Why a stream cannot be read as WebSocket frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a WebSocket frame stream: {0}")]
pub(crate) struct FrameError(String);

/// What a scan of some bytes found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The last offset in the bytes at which the stream stood between whole messages (a
    /// control frame between messages counts as a whole message).
    pub(crate) boundary: Option<usize>,
    /// A close frame ended in the bytes: its status code, if it had one.
    pub(crate) close: Option<Option<u16>>,
}

/// Follows one direction of a WebSocket stream.
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// Whether a frame's payload is being read.
    in_frame: bool,
    /// Whether the current frame is a data frame that ends its message.
    ends_message: bool,
    /// Whether a fragmented data message is open.
    in_message: bool,
    /// The current frame is a close frame: its payload so far, and its mask.
    close: Option<(Vec<u8>, Option<[u8; 4]>)>,
    /// The start of a header that has not fully arrived.
    head: [u8; MAX_HEADER],
    head_len: usize,
}

impl Scanner {
    /// Whether the stream stands between whole messages now.
    pub(crate) fn at_boundary(&self) -> bool {
        !self.in_frame && !self.in_message && self.head_len == 0
    }

    /// Follows `bytes`, the next bytes of the stream.
    pub(crate) fn scan(&mut self, bytes: &[u8]) -> Result<Scan, FrameError> {
        let mut found = Scan::default();
        let mut at = 0;
        while at < bytes.len() {
            if self.in_frame {
                let take =
                    (bytes.len() - at).min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                if let Some((payload, _)) = &mut self.close {
                    payload.extend_from_slice(&bytes[at..at + take]);
                }
                at += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.end_frame(&mut found, at);
                }
                continue;
            }
            // A header: completed from what came before, if it straddled two reads.
            let take = (MAX_HEADER - self.head_len).min(bytes.len() - at);
            self.head[self.head_len..self.head_len + take].copy_from_slice(&bytes[at..at + take]);
            let staged = self.head_len + take;
            let mut cursor = Cursor::new(&self.head[..staged]);
            match FrameHeader::parse(&mut cursor) {
                Ok(Some((header, len))) => {
                    let header_len = usize::try_from(cursor.position()).unwrap_or(MAX_HEADER);
                    at += header_len - self.head_len;
                    self.head_len = 0;
                    self.start_frame(&header, len)?;
                    if len == 0 {
                        self.end_frame(&mut found, at);
                    }
                }
                Ok(None) => {
                    // Not enough yet: keep what there is for the next read.
                    self.head_len = staged;
                    at += take;
                }
                Err(e) => return Err(FrameError(e.to_string())),
            }
        }
        Ok(found)
    }

    fn start_frame(&mut self, header: &FrameHeader, len: u64) -> Result<(), FrameError> {
        self.ends_message = header.is_final && matches!(header.opcode, OpCode::Data(_));
        self.remaining = len;
        self.in_frame = len > 0;
        self.close = None;
        match header.opcode {
            OpCode::Control(control) => {
                if len > 125 || !header.is_final {
                    return Err(FrameError(
                        "a control frame longer than 125 bytes or fragmented".into(),
                    ));
                }
                if control == Control::Close {
                    self.close = Some((Vec::with_capacity(len as usize), header.mask));
                }
            }
            OpCode::Data(Data::Continue) => {
                if !self.in_message {
                    return Err(FrameError("a continuation outside a message".into()));
                }
            }
            OpCode::Data(_) => {
                if self.in_message {
                    return Err(FrameError("a new message inside a fragmented one".into()));
                }
                self.in_message = !header.is_final;
            }
        }
        Ok(())
    }

    fn end_frame(&mut self, found: &mut Scan, at: usize) {
        self.in_frame = false;
        if let Some((mut payload, mask)) = self.close.take() {
            if let Some(mask) = mask {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= mask[i & 3];
                }
            }
            let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            found.close = Some(code);
        } else if self.ends_message {
            self.in_message = false;
        }
        if !self.in_message {
            found.boundary = Some(at);
        }
    }
}

/// An unmasked text frame, as a server writes one (never compressed, so valid on a stream
/// with `permessage-deflate` too).
pub(crate) fn text(payload: &str) -> Vec<u8> {
    format(Frame::message(
        payload.as_bytes().to_vec(),
        OpCode::Data(Data::Text),
        true,
    ))
}

/// An unmasked close frame with `code` and `reason`, as a server writes one.
pub(crate) fn close(code: u16, reason: &str) -> Vec<u8> {
    format(Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    })))
}

/// A masked close frame with `code`, as a client writes one (the gateway is the back end's
/// client).
pub(crate) fn masked_close(code: u16) -> Vec<u8> {
    let mut frame = Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: "".into(),
    }));
    frame.header_mut().mask = Some(rand::random());
    format(frame)
}

fn format(frame: Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len());
    // Writing into a `Vec` cannot fail.
    let _ = frame.format(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![opcode | if fin { 0x80 } else { 0 }];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n < 65536 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    /// Every offset at which the stream stood between messages, fed `step` bytes at a time.
    fn boundaries(stream: &[u8], step: usize) -> (Vec<usize>, Vec<Option<u16>>) {
        let mut s = Scanner::default();
        let (mut at, mut found, mut closes) = (0, Vec::new(), Vec::new());
        for chunk in stream.chunks(step) {
            let scan = s.scan(chunk).unwrap();
            if let Some(b) = scan.boundary {
                found.push(at + b);
            }
            closes.extend(scan.close);
            at += chunk.len();
        }
        (found, closes)
    }

    #[test]
    fn message_boundaries_and_close_codes_in_any_cut() {
        let mut stream = masked(0x1, true, b"hello"); // a whole text message
        let first = stream.len();
        stream.extend(masked(0x2, false, &[7; 300])); // a fragmented binary message...
        stream.extend(masked(0x9, true, b"ping")); // ...a ping inside it: no boundary...
        stream.extend(masked(0x0, true, &[8; 70_000])); // ...its last fragment
        let second = stream.len();
        stream.extend(masked(0x8, true, &[0x03, 0xE9, b'b', b'y', b'e'])); // close 1001
        let third = stream.len();
        for step in [1, 2, 7, 13, 100, 4096, stream.len()] {
            let (found, closes) = boundaries(&stream, step);
            // Per chunk only the last boundary is reported: check the ones that must show.
            assert_eq!(found.last(), Some(&third), "step {step}");
            if step == 1 {
                assert_eq!(found, [first, second, third], "step {step}");
            }
            assert_eq!(closes, [Some(1001)], "step {step}");
        }
    }

    #[test]
    fn frames_the_gateway_writes() {
        assert_eq!(text("hi"), [0x81, 0x02, b'h', b'i']);
        assert_eq!(
            close(1000, "bye"),
            [0x88, 0x05, 0x03, 0xE8, b'b', b'y', b'e']
        );
        let mut s = Scanner::default();
        assert_eq!(s.scan(&masked_close(1001)).unwrap().close, Some(Some(1001)));
    }

    #[test]
    fn broken_streams_are_refused() {
        for bad in [
            masked(0x0, true, b"x"),  // a continuation with no message
            vec![0x83, 0x00],         // a reserved opcode
            masked(0x9, false, b"x"), // a fragmented ping
        ] {
            assert!(Scanner::default().scan(&bad).is_err(), "{bad:?}");
        }
    }
}
