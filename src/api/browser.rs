//! What web pages may do with this server: which origins may call it (CORS),
//! which Host names it answers to (against DNS rebinding), and the headers
//! every answer carries.
//!
//! A server on loopback with no token (single-user mode) trusts whoever can
//! reach it, and any page the user visits can try. So by default no other
//! origin may call it: the web UI it serves is same-origin and needs none.
//! `ROLEPLAY_CORS_ORIGINS` lists the front ends that may; `*` only once
//! tokens are required. A page of another site that rebinds its own name to
//! 127.0.0.1 is same-origin as far as the browser knows, so on a loopback
//! listener the `Host` must be one of the loopback names (or one listed in
//! `ROLEPLAY_ALLOWED_HOSTS`). Health checks stay reachable under any name.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tonic::Status;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use super::auth::REQUEST_ID_HEADER;

/// Which origins may call the server from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// None but the server's own (the default).
    #[default]
    SameOriginOnly,
    /// These exact origins (`https://app.example`, `http://localhost:5173`).
    List(Vec<String>),
    /// Any origin: only allowed once every call needs a token.
    Any,
}

impl CorsOrigins {
    /// Parses `ROLEPLAY_CORS_ORIGINS`: exact origins separated by commas, or
    /// `*`. Empty: same origin only.
    pub fn parse(list: &str) -> Result<Self, String> {
        let items: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if items.is_empty() {
            return Ok(Self::SameOriginOnly);
        }
        if items.contains(&"*") {
            return if items.len() == 1 {
                Ok(Self::Any)
            } else {
                Err("ROLEPLAY_CORS_ORIGINS is either * alone or a list of origins, not both".into())
            };
        }
        let mut origins = Vec::with_capacity(items.len());
        for item in items {
            let exact = reqwest::Url::parse(item)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https") && url.origin().is_tuple())
                .map(|url| url.origin().ascii_serialization())
                .filter(|origin| origin == item.trim_end_matches('/'));
            match exact {
                Some(origin) => origins.push(origin),
                None => {
                    return Err(format!(
                        "ROLEPLAY_CORS_ORIGINS: {item:?} is not an origin; write scheme, host and port only, \
                         like https://app.example or http://localhost:5173"
                    ));
                }
            }
        }
        Ok(Self::List(origins))
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            Self::SameOriginOnly => false,
            Self::List(origins) => origins.iter().any(|o| o == origin),
            Self::Any => true,
        }
    }
}

/// The browser-facing settings, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct BrowserOptions {
    /// Origins of web front ends that may call the server from a browser,
    /// separated by commas (`https://app.example,http://localhost:5173`), or
    /// `*` for any (refused until tokens are required). Empty: none but the
    /// server's own web UI.
    #[arg(long, env = "ROLEPLAY_CORS_ORIGINS", default_value = "", value_parser = CorsOrigins::parse, global = true)]
    pub cors_origins: CorsOrigins,
    /// Host names a loopback listener also answers to (besides localhost,
    /// 127.0.0.1 and [::1]), separated by commas; `name` or `name:port`.
    #[arg(long, env = "ROLEPLAY_ALLOWED_HOSTS", default_value = "", value_parser = parse_hosts, global = true)]
    pub allowed_hosts: Hosts,
}

/// Host names, as `ROLEPLAY_ALLOWED_HOSTS` lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts(pub Vec<String>);

fn parse_hosts(list: &str) -> Result<Hosts, String> {
    Ok(BrowserOptions::parse_hosts(list))
}

impl BrowserOptions {
    /// Parses `ROLEPLAY_ALLOWED_HOSTS`: names separated by commas.
    pub fn parse_hosts(list: &str) -> Hosts {
        Hosts(list.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect())
    }
}

/// The policy as the middleware applies it to one listener.
#[derive(Debug)]
pub struct Guard {
    options: BrowserOptions,
    /// Loopback listeners check the Host; others are reached by names this
    /// server cannot know, and rely on tokens.
    check_hosts: bool,
}

/// Request headers a browser client may send; named rather than mirrored,
/// so a page cannot smuggle in headers this server never meant to accept.
const ALLOWED_REQUEST_HEADERS: [&str; 7] =
    ["content-type", "x-grpc-web", "x-user-agent", "authorization", REQUEST_ID_HEADER, "grpc-timeout", "last-event-id"];

/// Paths served whatever the Host and Origin: probes call them by any name.
fn is_health_check(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path == "/healthz" || path == "/readyz"
}

impl Guard {
    pub fn new(options: BrowserOptions, listening: SocketAddr) -> Arc<Self> {
        Arc::new(Self { options, check_hosts: listening.ip().is_loopback() })
    }

    /// The CORS layer: nothing for origins that are not allowed, and the
    /// gRPC status headers exposed to those that are (or every error looks
    /// alike to them).
    pub fn cors(&self) -> CorsLayer {
        let allow_origin = match &self.options.cors_origins {
            CorsOrigins::Any => AllowOrigin::any(),
            CorsOrigins::SameOriginOnly => AllowOrigin::list([]),
            CorsOrigins::List(origins) => {
                AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
            }
        };
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers(AllowHeaders::list(ALLOWED_REQUEST_HEADERS.map(HeaderName::from_static)))
            .expose_headers([
                HeaderName::from_static("grpc-status"),
                HeaderName::from_static("grpc-message"),
                HeaderName::from_static("grpc-status-details-bin"),
                HeaderName::from_static(REQUEST_ID_HEADER),
            ])
            .max_age(Duration::from_secs(24 * 60 * 60))
    }

    /// Whether `authority` (`host[:port]`) names this server. The name is
    /// what DNS rebinding forges; any port goes, since port forwards and
    /// proxies (ssh -L, a container's port map) put another one there.
    fn host_allowed(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        let (host, port) = split_authority(&authority);
        if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            return true;
        }
        self.options.allowed_hosts.0.iter().any(|allowed| {
            let (name, allowed_port) = split_authority(allowed);
            name == host && allowed_port.is_none_or(|p| Some(p) == port)
        })
    }

    /// Why the request may not be served, if it may not.
    fn refusal(&self, request: &Request) -> Option<Refusal> {
        if is_health_check(request.uri().path()) {
            return None;
        }
        let authorities = authorities(request);
        if self.check_hosts {
            if authorities.is_empty() {
                return Some(Refusal::Host(String::new()));
            }
            if let Some(bad) = authorities.iter().find(|a| !self.host_allowed(a)) {
                return Some(Refusal::Host((*bad).to_owned()));
            }
        }
        let origin = request.headers().get(header::ORIGIN)?;
        let origin = origin.to_str().unwrap_or("?");
        let same_origin = authorities
            .iter()
            .any(|a| origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(a));
        if same_origin || self.options.cors_origins.allows(origin) {
            None
        } else {
            Some(Refusal::Origin(origin.to_owned()))
        }
    }
}

/// The request's `:authority` (HTTP/2) and `Host` (HTTP/1.1); both are
/// checked when both are present.
fn authorities(request: &Request) -> Vec<&str> {
    let mut found: Vec<&str> = request.uri().authority().map(|a| a.as_str()).into_iter().collect();
    if let Some(host) = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()) {
        found.push(host);
    }
    found
}

/// `host[:port]`, where an IPv6 host keeps its brackets.
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], authority[i + 1..].parse().ok()),
        _ => (authority, None),
    };
    (host, port)
}

enum Refusal {
    Host(String),
    Origin(String),
}

impl Refusal {
    fn message(&self) -> String {
        match self {
            Self::Host(host) if host.is_empty() => {
                "the request names no host; this server answers only to localhost, 127.0.0.1 and [::1]".into()
            }
            Self::Host(host) => format!(
                "this server does not answer to the host name {host:?} (a page could be reaching it through DNS \
                 rebinding); use localhost, 127.0.0.1 or [::1], or allow the name with ROLEPLAY_ALLOWED_HOSTS"
            ),
            Self::Origin(origin) => format!(
                "web pages from {origin} may not call this server; list the origin in ROLEPLAY_CORS_ORIGINS to allow it"
            ),
        }
    }

    /// gRPC callers get PERMISSION_DENIED (gRPC-Web translates it); others
    /// 421 for a wrong host, 403 for a foreign origin.
    fn into_response(self, headers: &HeaderMap) -> Response {
        let is_grpc = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        let message = self.message();
        if is_grpc {
            return Status::permission_denied(message).into_http();
        }
        let status = match self {
            Self::Host(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::Origin(_) => StatusCode::FORBIDDEN,
        };
        (status, message).into_response()
    }
}

/// The middleware: refuses requests for other host names and from origins
/// that are not allowed, before anything else looks at them.
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.refusal(&request) {
        None => next.run(request).await,
        Some(refusal) => {
            tracing::info!(path = %request.uri().path(), "refused a request for another host or origin");
            refusal.into_response(request.headers())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hosts: &[&str]) -> Arc<Guard> {
        let options = BrowserOptions {
            cors_origins: CorsOrigins::List(vec!["https://app.example".into()]),
            allowed_hosts: Hosts(hosts.iter().map(|h| h.to_string()).collect()),
        };
        Guard::new(options, "127.0.0.1:50051".parse().expect("addr"))
    }

    #[test]
    fn loopback_names_and_listed_names_are_allowed() {
        let g = guard(&["chat.local", "box:8080"]);
        for ok in ["localhost:50051", "127.0.0.1:8080", "[::1]:50051", "LOCALHOST", "[::1]", "chat.local:50051"] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in ["evil.example:50051", "localhost.evil.example", "127.0.0.2:50051", "box:50051", "evil"] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        assert!(g.host_allowed("box:8080"));
    }

    #[test]
    fn origins_parse_exactly() {
        assert_eq!(CorsOrigins::parse(""), Ok(CorsOrigins::SameOriginOnly));
        assert_eq!(CorsOrigins::parse(" * "), Ok(CorsOrigins::Any));
        assert_eq!(
            CorsOrigins::parse("https://a.example, http://localhost:5173/"),
            Ok(CorsOrigins::List(vec!["https://a.example".into(), "http://localhost:5173".into()]))
        );
        for bad in ["*,https://a.example", "a.example", "https://a.example/app", "ftp://a.example"] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
