//! Request-body limits: a total deadline for receiving a body ([`BodyDeadlineLayer`]), the
//! configured limits a handler may need to name in its error ([`BodyLimits`]), and
//! [`body_error`], which tells a body that came too slowly or was too large from any other
//! failure to read it.
//!
//! A client that sends its headers and then trickles (or stops sending) its body would
//! otherwise hold a connection and a task for as long as it likes. The deadline counts from
//! the moment the request arrives, over the whole body, so a byte every few seconds does not
//! keep it alive: once it passes, the next read of the body fails with [`BodyDeadlineElapsed`],
//! which the extractors answer as a 408 `request_timeout` (and the connection is closed).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::Request;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::ApiError;

/// The limits the server applies to request bodies, put into every request's extensions by
/// [`BodyDeadlineLayer`] so extractors can name them in their answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// The largest body a JSON or form request may carry, in bytes (`--max-body-bytes`).
    pub max_body_bytes: usize,
    /// How long a client may take to send its whole body (`--body-timeout-secs`).
    pub body_timeout: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// The error a [`DeadlineBody`] yields once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
pub struct BodyDeadlineElapsed(pub Duration);

/// A tower layer that gives every request body a total deadline and records the
/// [`BodyLimits`] in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadlineLayer {
    limits: BodyLimits,
}

impl BodyDeadlineLayer {
    /// A layer applying these limits.
    pub fn new(limits: BodyLimits) -> Self {
        Self { limits }
    }
}

impl<S> tower::Layer<S> for BodyDeadlineLayer {
    type Service = BodyDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyDeadline {
            inner,
            limits: self.limits,
        }
    }
}

/// The service of [`BodyDeadlineLayer`].
#[derive(Debug, Clone)]
pub struct BodyDeadline<S> {
    inner: S,
    limits: BodyLimits,
}

impl<S> tower::Service<Request<Body>> for BodyDeadline<S>
where
    S: tower::Service<Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(self.limits);
        let body = if body.is_end_stream() {
            body
        } else {
            Body::new(DeadlineBody::new(body, self.limits.body_timeout))
        };
        self.inner.call(Request::from_parts(parts, body))
    }
}

/// A body that fails with [`BodyDeadlineElapsed`] when it has not ended by its deadline.
pub struct DeadlineBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> DeadlineBody<B> {
    /// Wraps `inner`; the deadline is `timeout` from now.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyDeadlineElapsed(this.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What went wrong reading a request body, from the error (or any error in its chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFailure {
    /// The body passed the deadline of [`BodyDeadlineLayer`].
    TooSlow,
    /// The body is larger than the limit (axum's `DefaultBodyLimit`).
    TooLarge,
    /// Anything else (the client went away, a malformed chunk).
    Other,
}

/// Classifies a body-reading error by walking its source chain.
pub fn body_error(err: &(dyn std::error::Error + 'static)) -> BodyFailure {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<BodyDeadlineElapsed>() {
            return BodyFailure::TooSlow;
        }
        if e.is::<http_body_util::LengthLimitError>() {
            return BodyFailure::TooLarge;
        }
        current = e.source();
    }
    BodyFailure::Other
}

/// The [`ApiError`] of a body that could not be read: 408 when too slow, 413 when too large
/// (naming the configured limit), `other` otherwise.
pub fn body_api_error(
    err: &(dyn std::error::Error + 'static),
    limits: Option<&BodyLimits>,
    other: impl FnOnce() -> ApiError,
) -> ApiError {
    match body_error(err) {
        BodyFailure::TooSlow => ApiError::RequestTimeout,
        BodyFailure::TooLarge => {
            ApiError::BodyTooLarge(limits.copied().unwrap_or_default().max_body_bytes)
        }
        BodyFailure::Other => other(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn a_body_that_stalls_fails_with_the_deadline_error() {
        let (_tx, stalled) =
            tokio::sync::mpsc::channel::<Result<Frame<bytes::Bytes>, std::io::Error>>(1);
        let stream = http_body_util::StreamBody::new(tokio_stream_from(stalled));
        let body = DeadlineBody::new(stream, Duration::from_millis(50));
        let Err(err) = body.collect().await else {
            panic!("the deadline passes");
        };
        assert_eq!(body_error(err.as_ref()), BodyFailure::TooSlow);
    }

    #[tokio::test]
    async fn a_complete_body_is_passed_through_untouched() {
        let body = DeadlineBody::new(Body::from("hello"), Duration::from_millis(50));
        let bytes = body.collect().await.expect("complete").to_bytes();
        assert_eq!(&bytes[..], b"hello");
    }

    #[test]
    fn a_length_limit_error_anywhere_in_the_chain_is_too_large() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapper")]
        struct Wrapper(#[source] http_body_util::LengthLimitError);
        let limited = http_body_util::Limited::new(Body::from("0123456789"), 4);
        let Err(err) = futures::executor::block_on(limited.collect()) else {
            panic!("over the limit");
        };
        let length = err
            .downcast::<http_body_util::LengthLimitError>()
            .expect("a length limit error");
        let wrapped = Wrapper(*length);
        assert_eq!(body_error(&wrapped), BodyFailure::TooLarge);
        assert_eq!(
            body_error(&std::io::Error::other("reset")),
            BodyFailure::Other
        );
        let api = body_api_error(&wrapped, None, || ApiError::BadRequest("x".into()));
        assert!(matches!(api, ApiError::BodyTooLarge(1_048_576)));
    }

    /// A stream of the receiver's items (no `tokio-stream` dependency needed).
    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Unpin {
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
