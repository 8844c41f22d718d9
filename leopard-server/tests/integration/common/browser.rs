//! A browser for the web interface's tests: a host, a cookie jar (set and cleared by the
//! responses) and the CSRF token of the last page that carried one, sending requests through
//! the real router.

use std::collections::HashMap;

use axum::body::Body;
use http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::TestApp;

/// A browser: a host, a cookie jar, and the CSRF token of the last page that had one.
pub struct Browser<'a> {
    app: &'a TestApp,
    /// The `Host` header sent.
    pub host: String,
    /// The cookie jar.
    pub cookies: HashMap<String, String>,
    /// The CSRF token of the last page that had one.
    pub csrf: String,
}

/// A page: status, headers, body text.
pub struct Page {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body text.
    pub body: String,
}

impl Page {
    /// The `Location` header.
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The first CSRF token in a page.
pub fn csrf_of(body: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker)? + marker.len();
    Some(body[start..].split('"').next()?.to_owned())
}

impl<'a> Browser<'a> {
    /// A browser of tenant `slug`'s host with no cookie.
    pub fn new(app: &'a TestApp, slug: &str) -> Self {
        Self {
            app,
            host: format!("{slug}.localhost"),
            cookies: HashMap::new(),
            csrf: String::new(),
        }
    }

    /// Sends a request (a form when `form` is given), keeping the cookies and the CSRF token.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Page {
        let body = form.map(|fields| {
            let mut body = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                body.append_pair(k, v);
            }
            (
                "application/x-www-form-urlencoded".to_owned(),
                body.finish().into_bytes(),
            )
        });
        self.send_body(method, path, body).await
    }

    /// Sends a request with an optional `(content type, body)`, keeping the cookies and the
    /// CSRF token.
    pub async fn send_body(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(String, Vec<u8>)>,
    ) -> Page {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("accept", "text/html");
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header("cookie", jar.join("; "));
        }
        let request = match body {
            Some((content_type, bytes)) => request
                .header("content-type", content_type)
                .body(Body::from(bytes)),
            None => request.body(Body::empty()),
        }
        .expect("request");
        let response = self
            .app
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        for cookie in headers.get_all(header::SET_COOKIE) {
            let text = cookie.to_str().expect("ascii cookie");
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(csrf) = csrf_of(&body) {
            self.csrf = csrf;
        }
        Page {
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// Posts `fields` plus the current CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.send(Method::POST, path, Some(&all)).await
    }

    /// Posts a `multipart/form-data` body with one file part `field` (`filename`, declared
    /// `content_type`) to `path` exactly as given (a CSRF token goes in `path`'s query).
    pub async fn post_multipart(
        &mut self,
        path: &str,
        field: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Page {
        let (content_type, body) = super::multipart(field, filename, content_type, bytes);
        self.send_body(Method::POST, path, Some((content_type, body)))
            .await
    }

    /// Posts exactly `fields` (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(fields)).await
    }

    /// Logs in through the form.
    pub async fn login_with(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/login/").await;
        assert_eq!(form.status, StatusCode::OK);
        self.post(
            "/login/",
            &[
                ("username", username),
                ("password", password),
                ("next", "/"),
            ],
        )
        .await
    }

    /// A browser of tenant `slug` signed in as `username` (test password), the dashboard
    /// loaded (so the CSRF token is the session's).
    pub async fn signed_in(app: &'a TestApp, slug: &str, username: &str) -> Browser<'a> {
        let mut browser = Self::new(app, slug);
        browser.login(username).await;
        browser
    }

    /// Logs in with the test password and opens the dashboard.
    pub async fn login(&mut self, username: &str) {
        let page = self.login_with(username, super::PASSWORD).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "login of {username}: {}",
            page.body
        );
        let home = self.get("/").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    }
}
