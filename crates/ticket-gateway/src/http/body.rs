//! Response bodies, and request bodies read within bounds.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;

use super::pace::{ClientFault, Fault, Pace, Paced};
use crate::config::Limits;

/// Any error a body can fail with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body of every handler: a complete buffer (nearly every reply the gateway
/// writes itself), or a stream (a back end's reply passed through). An enum rather than a
/// boxed trait object, so the common case costs no allocation and no dynamic dispatch.
#[derive(Debug)]
pub struct Body(Kind);

#[derive(Debug)]
enum Kind {
    /// What is left to send: `None` once sent.
    Full(Option<Bytes>),
    Stream(BoxBody<Bytes, BoxError>),
}

impl Body {
    /// A body that streams `body` through.
    pub fn stream<B>(body: B) -> Body
    where
        B: http_body::Body<Data = Bytes, Error = BoxError> + Send + Sync + 'static,
    {
        Body(Kind::Stream(BoxBody::new(body)))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Kind::Full(data) => Poll::Ready(
                data.take()
                    .filter(|d| !d.is_empty())
                    .map(|d| Ok(Frame::data(d))),
            ),
            Kind::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(data) => data.as_ref().map_or(true, Bytes::is_empty),
            Kind::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Stream(body) => body.size_hint(),
        }
    }
}

/// A complete body. Its exact size is known, so hyper sends it with `Content-Length`, and
/// with the connection's vectored writes turned off, headers and body leave in one write:
/// some clients parse only the first chunk they receive.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Body(Kind::Full(Some(bytes.into())))
}

/// An empty body.
pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// The body is larger than the limit.
    #[error("request body too large")]
    TooLarge,
    /// The body fell behind its pace (see [`super::pace`]).
    #[error("request body did not arrive in time")]
    TimedOut,
    /// The connection failed or the framing was broken.
    #[error("request body could not be read")]
    Broken,
}

/// Reads a whole request body within `limits`: refused once it passes `max_body_bytes`
/// (Content-Length and chunked bodies are counted the same way; a declared length past the
/// limit is refused before anything is read), and failed when it falls behind its pace
/// (`body_read_timeout`). A body that arrives as one frame, as small bodies do, is returned
/// as it is, without a copy.
pub(crate) async fn read_body<B>(body: B, limits: &Limits) -> Result<Bytes, BodyError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let limit = limits.max_body_bytes;
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    let fault = Fault::default();
    let body = Paced::new(body, Pace::of(limits), fault.clone());
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut rest = bytes::BytesMut::new();
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|_| match fault.get() {
            Some(ClientFault::TimedOut) => BodyError::TimedOut,
            _ => BodyError::Broken,
        })?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers
        };
        // Free for `Bytes`, hyper's data type.
        let data = data.copy_to_bytes(data.remaining());
        let len = first.as_ref().map_or(0, Bytes::len) + rest.len() + data.len();
        if len > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if rest.is_empty() => first = Some(data),
            Some(f) => {
                rest.extend_from_slice(&f);
                rest.extend_from_slice(&data);
            }
            None => rest.extend_from_slice(&data),
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}
