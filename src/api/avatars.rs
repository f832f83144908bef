//! GET /v1/characters/{id}/avatar: a character's avatar image, for `<img>`
//! tags. Authorized like the SSE endpoint (a bearer token, or
//! `?access_token=` where a page cannot set headers). The ETag is the
//! image's content hash, so a browser revalidates with If-None-Match and
//! gets 304 until the avatar changes.

use axum::{
    Router,
    extract::{Extension, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use super::validate;
use crate::{character_cards, error::http_status, state::AppState, users::Caller};

pub const ROUTE: &str = "/v1/characters/{character_id}/avatar";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(ROUTE, get(avatar))
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::auth::http))
        .with_state(state)
}

async fn avatar(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(character_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let found = match validate::id("character id", &character_id) {
        Ok(id) => character_cards::avatar(&state, &caller, &id).await,
        Err(err) => Err(err),
    };
    let avatar = match found {
        Ok(avatar) => avatar,
        Err(err) => {
            let status = tonic::Status::from(err);
            return (http_status(status.code()), status.message().to_owned()).into_response();
        }
    };
    let etag = format!("\"{}\"", avatar.hash);
    let cache = [
        (header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""))),
        // Private: behind a token. no-cache: revalidate, which the ETag makes cheap.
        (header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache")),
    ];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let content_type = HeaderValue::from_str(&avatar.content_type).unwrap_or(HeaderValue::from_static("image/png"));
    (StatusCode::OK, cache, [(header::CONTENT_TYPE, content_type)], avatar.data).into_response()
}
