//! Reading a request's body within the `[mock]` bounds: at most `max_body_bytes`, all of
//! it within `body_timeout_s` of the head.
//!
//! Owns only the reading and why it failed; how a failure is answered (the provider's
//! envelope, the status) is the pipeline's. The bounds are applied by http-body-util's
//! `Limited` and tokio's timeout; what is written here is the order: a declared length
//! over the limit is refused before a byte of the body is read, as nginx and the
//! providers' front ends answer 413 at once.

use axum::body::{Body, Bytes, HttpBody};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::time::Duration;

/// Why a body could not be read.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Longer than the limit: declared so by `Content-Length`, or grown past it in
    /// chunks.
    TooLarge,
    /// Not all there within the timeout.
    TimedOut(Duration),
    /// The connection failed or the framing was broken.
    Unreadable(String),
}

/// Reads `body` whole, if it is at most `limit` bytes and arrives within `timeout`.
///
/// The timeout bounds the whole body, not the gaps between its reads (nginx's
/// `client_body_timeout` times each read): a client that sends a byte at a time, each
/// just inside a gap bound, would otherwise hold a connection and its buffer forever.
pub(super) async fn read(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    // hyper's size hint of a body with a `Content-Length` is exactly that length.
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(BodyError::TooLarge);
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyError::TimedOut(timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(e)) => Err(BodyError::Unreadable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunks: Vec<&'static [u8]>) -> Body {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from_static(c))));
        Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_up_to_the_limit_and_refused_past_it() {
        let second = Duration::from_secs(1);
        let body = read(Body::from("0123456789"), 10, second).await.unwrap();
        assert_eq!(&body[..], b"0123456789");
        assert!(matches!(
            read(Body::from("0123456789"), 9, second).await,
            Err(BodyError::TooLarge)
        ));
        // Without a declared length, the chunks are counted as they arrive.
        assert!(matches!(
            read(chunked(vec![b"01234", b"56789"]), 9, second).await,
            Err(BodyError::TooLarge)
        ));
        let body = read(chunked(vec![b"01234", b"56789"]), 10, second);
        assert_eq!(&body.await.unwrap()[..], b"0123456789");
    }

    #[tokio::test]
    async fn a_body_that_never_ends_times_out() {
        let pending =
            futures_util::stream::pending::<Result<hyper::body::Frame<Bytes>, std::io::Error>>();
        let body = Body::new(http_body_util::StreamBody::new(pending));
        let timeout = Duration::from_millis(20);
        assert!(matches!(
            read(body, 10, timeout).await,
            Err(BodyError::TimedOut(t)) if t == timeout
        ));
    }
}
