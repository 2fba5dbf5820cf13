//! The few pieces of WebSocket (RFC 6455) the `websocket` workload needs: the upgrade
//! request, one masked text frame built once per connection, and the head of the frames the
//! back end sends back, parsed in place by [`crate::http1::Conn::read_frame`].
//!
//! Clients must mask their frames; the key is fixed, which servers cannot tell from a
//! random one and which lets the frame be built once.

/// Text frame.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame.
pub const OP_PING: u8 = 0x9;
/// Pong frame.
pub const OP_PONG: u8 = 0xA;

/// The method of the greeting the gateway may send first on an engine socket.
pub const GREETING_METHOD: &[u8] = b"OnAuthenticationInformation";

/// The `Sec-WebSocket-Key` of every upgrade (any 16 bytes, base64).
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The masking key of every client frame.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The head of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// FIN: the last frame of a message.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// Bytes of the head (with the extended length and the masking key).
    pub head_len: usize,
    /// Bytes of payload after the head.
    pub payload_len: usize,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
}

/// The head at the start of `buf`, or `None` until all of it is there.
pub fn parse_frame_head(buf: &[u8]) -> Option<FrameHead> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut head_len) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 10)
        }
        n => (usize::from(n), 2),
    };
    let mask = if masked {
        let key: [u8; 4] = buf.get(head_len..head_len + 4)?.try_into().ok()?;
        head_len += 4;
        Some(key)
    } else {
        None
    };
    Some(FrameHead {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        head_len,
        payload_len,
        mask,
    })
}

/// XORs `payload` with `mask` in place (masking and unmasking are the same).
pub fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// One final, masked frame.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    let start = frame.len();
    frame.extend_from_slice(payload);
    apply_mask(&mut frame[start..], MASK);
    frame
}

/// The upgrade request for `path`, with extra header lines (each ending in CRLF).
pub fn upgrade_request(host: &str, path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// Whether a text payload is the gateway's greeting (a JSON-RPC notification of method
/// `OnAuthenticationInformation`).
pub fn is_greeting(payload: &[u8]) -> bool {
    payload
        .windows(GREETING_METHOD.len())
        .any(|w| w == GREETING_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_frames_parse_back() {
        for len in [0, 5, 125, 126, 128, 0xffff, 0x10000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frame = masked_frame(OP_TEXT, &payload);
            let head = parse_frame_head(&frame).unwrap();
            assert!(head.fin);
            assert_eq!(head.opcode, OP_TEXT);
            assert_eq!(head.payload_len, len);
            assert_eq!(head.head_len + len, frame.len());
            let mut body = frame[head.head_len..].to_vec();
            apply_mask(&mut body, head.mask.unwrap());
            assert_eq!(body, payload);
            // Every prefix shorter than the head is incomplete.
            for cut in 0..head.head_len {
                assert_eq!(parse_frame_head(&frame[..cut]), None, "len {len} cut {cut}");
            }
        }
    }

    #[test]
    fn server_frames_are_unmasked() {
        let head = parse_frame_head(&[0x81, 126, 0, 128]).unwrap();
        assert_eq!(
            head,
            FrameHead {
                fin: true,
                opcode: OP_TEXT,
                head_len: 4,
                payload_len: 128,
                mask: None
            }
        );
        let close = parse_frame_head(&[0x88, 2, 3, 232]).unwrap();
        assert_eq!((close.opcode, close.payload_len), (OP_CLOSE, 2));
    }

    #[test]
    fn greetings_are_recognised() {
        let greeting = br#"{"jsonrpc":"2.0","method":"OnAuthenticationInformation","params":{"userId":"x","mustAuthenticate":false}}"#;
        assert!(is_greeting(greeting));
        assert!(!is_greeting(
            br#"{"jsonrpc":"2.0","id":1,"method":"GetActiveDoc"}"#
        ));
        let up = String::from_utf8(upgrade_request("h:1", "/up/app/x", "Cookie: a=b\r\n")).unwrap();
        assert!(up.starts_with("GET /up/app/x HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(up.ends_with("Cookie: a=b\r\n\r\n"));
    }
}
