//! The web UI: the files Vite builds into clients/web/dist, served at `/` on
//! the API's own port, so the page is same-origin with the API and needs no
//! CORS. Release builds embed the files; debug builds read the folder at
//! run time, so a rebuilt UI is served without rebuilding the server.
//!
//! Pages get a strict Content-Security-Policy: scripts, styles and requests
//! only from this origin, no inline script, no framing. Files under
//! `assets/` have content hashes in their names and are cached for good;
//! everything else is revalidated by ETag.

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "$CARGO_MANIFEST_DIR/clients/web/dist"]
#[allow_missing = true]
struct Assets;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; \
     style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// `/`, top-level files (`/favicon.svg`) and `/assets/...`. Two-segment
/// paths belong to gRPC (`/package.Service/Method`), so none is taken here.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route("/{file}", get(|Path(file): Path<String>, headers: HeaderMap| async move { serve(&file, &headers) }))
        .route(
            "/assets/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&format!("assets/{path}"), &headers) }),
        )
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        let missing = if path == "index.html" {
            "the web UI is not built: run `npm run build` in clients/web"
        } else {
            "not found"
        };
        return (StatusCode::NOT_FOUND, missing).into_response();
    };
    let etag = format!("\"{}\"", hex_prefix(&file.metadata.sha256_hash()));
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let mime = file.metadata.mimetype();
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if mime.starts_with("text/html") {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    (headers, file.data.into_owned()).into_response()
}

/// The first 16 bytes of the content hash, as hex: plenty for an ETag.
fn hex_prefix(hash: &[u8; 32]) -> String {
    hex::encode(&hash[..16])
}
