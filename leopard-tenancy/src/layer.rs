//! [`TenancyLayer`]: a tower layer that resolves each request's tenant and puts a
//! [`TenantContext`] into its extensions.
//!
//! Resolvers are tried in this order, first match wins: the opt-in header resolver
//! (`X-Tenant: <slug>`), the opt-in path-prefix resolver (`/<prefix>/<slug>/…`, the prefix and
//! slug are stripped from the path before the inner service sees it), then the `Host` header
//! (exact domain, `<slug>-<app>.<base>`, `<slug>.<base>`). Configured public paths pass through
//! with no tenant. An unknown tenant is answered with JSON 404 `tenant_not_found`, a tenant that
//! is inactive, suspended or cancelled with JSON 403 `tenant_inactive`; neither touches the
//! database.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use tower::{Layer, Service};

use crate::model::TenantInfo;
use crate::registry::TenantRegistry;

/// Detail text of the 404 for an unknown tenant (the original API's wording).
pub const TENANT_NOT_FOUND_DETAIL: &str = "Tenant not found for this domain";
/// Detail text of the 403 for a tenant that is not served.
pub const TENANT_INACTIVE_DETAIL: &str = "This organisation's account is not active.";

/// Resolves tenants for the wrapped service; see the module docs.
#[derive(Clone, Debug)]
pub struct TenancyLayer {
    inner: Arc<LayerConfig>,
}

#[derive(Debug, Clone)]
struct LayerConfig {
    registry: Arc<TenantRegistry>,
    header: Option<HeaderName>,
    path_prefix: Option<String>,
    public_paths: Vec<String>,
}

impl TenancyLayer {
    /// A layer resolving by `Host` only, with no public paths.
    pub fn new(registry: Arc<TenantRegistry>) -> Self {
        Self {
            inner: Arc::new(LayerConfig {
                registry,
                header: None,
                path_prefix: None,
                public_paths: Vec::new(),
            }),
        }
    }

    fn config_mut(&mut self) -> &mut LayerConfig {
        Arc::make_mut(&mut self.inner)
    }

    /// Also resolve from a header holding the tenant slug (e.g. `X-Tenant`); tried before `Host`.
    pub fn with_header(mut self, name: HeaderName) -> Self {
        self.config_mut().header = Some(name);
        self
    }

    /// Also resolve from a path prefix: with `"/t"`, `/t/acme/api/x` is served as `/api/x` for
    /// tenant `acme`; tried before `Host`.
    ///
    /// The rewrite must happen before routing, so wrap the whole router
    /// (`Router::new().fallback_service(layer.layer(app))`) rather than `Router::layer`, which
    /// runs after route matching.
    pub fn with_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.config_mut().path_prefix = Some(prefix.trim_end_matches('/').to_owned());
        self
    }

    /// Requests whose path starts with `prefix` pass through without a tenant. This is a plain
    /// string prefix: end it with `/` (`"/health/"`) so that `/healthz-admin` is not matched.
    pub fn with_public_path(mut self, prefix: impl Into<String>) -> Self {
        self.config_mut().public_paths.push(prefix.into());
        self
    }
}

impl<S> Layer<S> for TenancyLayer {
    type Service = TenancyService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TenancyService {
            inner,
            config: Arc::clone(&self.inner),
        }
    }
}

/// The service produced by [`TenancyLayer`].
#[derive(Clone, Debug)]
pub struct TenancyService<S> {
    inner: S,
    config: Arc<LayerConfig>,
}

enum Outcome {
    Public,
    Tenant(Arc<TenantInfo>, Option<Uri>),
    NotFound,
    Inactive,
}

impl LayerConfig {
    fn resolve<B>(&self, req: &Request<B>) -> Outcome {
        let path = req.uri().path();
        if self
            .public_paths
            .iter()
            .any(|p| path.starts_with(p.as_str()))
        {
            return Outcome::Public;
        }
        let mut found: Option<(Arc<TenantInfo>, Option<Uri>)> = None;
        if let Some(header) = &self.header {
            if let Some(value) = req.headers().get(header).and_then(|v| v.to_str().ok()) {
                match self.registry.resolve_slug(value.trim()) {
                    Some(tenant) => found = Some((tenant, None)),
                    None => return Outcome::NotFound,
                }
            }
        }
        if found.is_none() {
            if let Some(prefix) = &self.path_prefix {
                if let Some(rest) = path
                    .strip_prefix(prefix.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                {
                    let (slug, tail) = rest.split_once('/').map_or((rest, ""), |(s, t)| (s, t));
                    match self.registry.resolve_slug(slug) {
                        Some(tenant) => found = Some((tenant, rewrite_path(req.uri(), tail))),
                        None => return Outcome::NotFound,
                    }
                }
            }
        }
        if found.is_none() {
            let host = req
                .headers()
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| req.uri().host());
            found = host
                .and_then(|h| self.registry.resolve_host(h))
                .map(|t| (t, None));
        }
        match found {
            None => Outcome::NotFound,
            Some((tenant, _)) if !tenant.is_serving() => Outcome::Inactive,
            Some((tenant, uri)) => Outcome::Tenant(tenant, uri),
        }
    }
}

/// `/<tail>` with the original query string.
fn rewrite_path(uri: &Uri, tail: &str) -> Option<Uri> {
    let path_and_query = match uri.query() {
        Some(q) => format!("/{tail}?{q}"),
        None => format!("/{tail}"),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

fn rejection<B>(status: StatusCode, detail: &str, code: &str) -> Response<TenancyBody<B>> {
    let body = serde_json::json!({ "detail": detail, "code": code }).to_string();
    let mut response = Response::new(TenancyBody::Rejection {
        body: Full::new(Bytes::from(body)),
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TenancyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TenancyBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match self.config.resolve(&req) {
            Outcome::Public => {}
            Outcome::NotFound => {
                return ResponseFuture::rejected(rejection(
                    StatusCode::NOT_FOUND,
                    TENANT_NOT_FOUND_DETAIL,
                    "tenant_not_found",
                ))
            }
            Outcome::Inactive => {
                return ResponseFuture::rejected(rejection(
                    StatusCode::FORBIDDEN,
                    TENANT_INACTIVE_DETAIL,
                    "tenant_inactive",
                ))
            }
            Outcome::Tenant(tenant, new_uri) => {
                if let Some(uri) = new_uri {
                    *req.uri_mut() = uri;
                }
                // Fills the `tenant` field of an enclosing request span, if it declares one.
                tracing::Span::current().record("tenant", tenant.slug.as_str());
                let context = self.config.registry.context(tenant);
                req.extensions_mut().insert(context);
            }
        }
        ResponseFuture::Inner {
            future: self.inner.call(req),
        }
    }
}

/// The response future and body; `pin_project!` generates projection types that carry no docs of
/// their own, hence the `allow`.
#[allow(missing_docs)]
mod types {
    use bytes::Bytes;
    use http::Response;
    use http_body_util::Full;
    use pin_project_lite::pin_project;

    pin_project! {
        /// Response future of [`super::TenancyService`].
        #[project = ResponseFutureProj]
        pub enum ResponseFuture<F, B> {
            /// The inner service is handling the request.
            Inner { #[pin] future: F },
            /// The request was refused by the layer.
            Rejected { response: Option<Response<TenancyBody<B>>> },
        }
    }

    pin_project! {
        /// Response body of [`super::TenancyService`]: the inner body or the layer's JSON
        /// rejection.
        #[project = TenancyBodyProj]
        pub enum TenancyBody<B> {
            /// The inner service's body.
            Inner { #[pin] body: B },
            /// A JSON rejection produced by the layer.
            Rejection { #[pin] body: Full<Bytes> },
        }
    }
}

pub use types::{ResponseFuture, TenancyBody};
use types::{ResponseFutureProj, TenancyBodyProj};

impl<F, B> ResponseFuture<F, B> {
    fn rejected(response: Response<TenancyBody<B>>) -> Self {
        Self::Rejected {
            response: Some(response),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TenancyBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseFutureProj::Inner { future } => future
                .poll(cx)
                .map_ok(|res| res.map(|body| TenancyBody::Inner { body })),
            ResponseFutureProj::Rejected { response } => match response.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => Poll::Pending,
            },
        }
    }
}

impl<B> Body for TenancyBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            TenancyBodyProj::Inner { body } => body.poll_frame(cx),
            TenancyBodyProj::Rejection { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(|never| match never {}))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Inner { body } => body.is_end_stream(),
            Self::Rejection { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Inner { body } => body.size_hint(),
            Self::Rejection { body } => body.size_hint(),
        }
    }
}
