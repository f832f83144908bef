//! Input limits and checks shared by every service. Each failure is an
//! INVALID_ARGUMENT that names the field and says what is allowed.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use super::pb;
use crate::{
    error::{Error, Result},
    samplers::Samplers,
    store::{Page, PageRequest},
};

/// Names and titles.
pub const NAME_MAX_CHARS: usize = 200;
/// Character and profile descriptions, and first messages.
pub const DESCRIPTION_MAX_CHARS: usize = 20_000;
/// System prompts and post-history instructions.
pub const PROMPT_MAX_CHARS: usize = 50_000;
/// One chat message.
pub const CONTENT_MAX_CHARS: usize = 100_000;
pub const MODEL_MAX_CHARS: usize = 200;
pub const URL_MAX_CHARS: usize = 2_048;
pub const API_KEY_MIN_CHARS: usize = 8;
pub const API_KEY_MAX_CHARS: usize = 1_024;
pub const PAGE_SIZE_DEFAULT: usize = 50;
pub const PAGE_SIZE_MAX: usize = 500;
pub const TEMPERATURE_MAX: f64 = 2.0;
pub const MAX_TOKENS_MAX: u32 = 1_000_000;

fn char_count(value: &str) -> usize {
    value.chars().count()
}

/// A required text: not empty, not only whitespace, at most `max` characters.
pub fn required(field: &str, value: String, max: usize) -> Result<String> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "is required and cannot be only whitespace"));
    }
    at_most(field, value, max)
}

/// A text of at most `max` characters (may be empty).
pub fn at_most(field: &str, value: String, max: usize) -> Result<String> {
    // PostgreSQL cannot store NUL in text; refusing it everywhere keeps both
    // backends storing exactly what they accept.
    if value.contains('\0') {
        return Err(Error::invalid(field, "cannot contain NUL (\\0) characters"));
    }
    let count = char_count(&value);
    if count > max {
        return Err(Error::invalid(field, format!("is {count} characters long; at most {max} are allowed")));
    }
    Ok(value)
}

pub fn optional_at_most(field: &str, value: Option<String>, max: usize) -> Result<Option<String>> {
    value.map(|v| at_most(field, v, max)).transpose()
}

/// For optional fields that can be cleared: empty means "none".
pub fn clearable(field: &str, value: String, max: usize) -> Result<Option<String>> {
    let value = at_most(field, value, max)?;
    Ok(if value.is_empty() { None } else { Some(value) })
}

/// An id this server issued (a UUID).
pub fn id(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    uuid::Uuid::parse_str(value)
        .map(|_| value.to_owned())
        .map_err(|_| Error::invalid(format!("{field} {value:?}"), "is not a valid id"))
}

pub fn temperature(value: Option<f64>) -> Result<Option<f64>> {
    match value {
        Some(t) if !(0.0..=TEMPERATURE_MAX).contains(&t) => {
            Err(Error::invalid("temperature", format!("must be between 0 and {TEMPERATURE_MAX}, got {t}")))
        }
        other => Ok(other),
    }
}

pub fn max_tokens(value: Option<u32>) -> Result<Option<i32>> {
    match value {
        None => Ok(None),
        Some(n) if n == 0 || n > MAX_TOKENS_MAX => {
            Err(Error::invalid("max_tokens", format!("must be between 1 and {MAX_TOKENS_MAX}, got {n}")))
        }
        Some(n) => Ok(i32::try_from(n).ok()),
    }
}

/// Context lengths a chat or the settings may give.
pub const CONTEXT_TOKENS_MIN: u32 = 256;
pub const CONTEXT_TOKENS_MAX: u32 = 10_000_000;

pub fn context_tokens(field: &str, value: Option<u32>) -> Result<Option<u32>> {
    match value {
        Some(n) if !(CONTEXT_TOKENS_MIN..=CONTEXT_TOKENS_MAX).contains(&n) => Err(Error::invalid(
            field,
            format!("must be from {CONTEXT_TOKENS_MIN} to {CONTEXT_TOKENS_MAX} tokens, not {n}"),
        )),
        other => Ok(other),
    }
}

/// Sampler settings from the request, checked against the provider's ranges.
pub fn samplers(field: &str, value: Option<pb::Samplers>) -> Result<Samplers> {
    let samplers = value.map(super::convert::samplers_in).unwrap_or_default();
    samplers.validate(field)?;
    Ok(samplers)
}

pub fn base_url(value: String) -> Result<String> {
    let value = at_most("provider_base_url", value.trim().to_owned(), URL_MAX_CHARS)?;
    if value.is_empty() {
        return Ok(value);
    }
    match reqwest::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(value),
        _ => Err(Error::invalid(
            format!("provider_base_url {value:?}"),
            "is not an http:// or https:// URL (for example https://openrouter.ai/api/v1)",
        )),
    }
}

pub fn api_key(value: &str) -> Result<()> {
    let count = char_count(value);
    if value.trim().is_empty() {
        return Err(Error::invalid("api_key", "is required"));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(Error::invalid("api_key", "cannot contain whitespace"));
    }
    if !(API_KEY_MIN_CHARS..=API_KEY_MAX_CHARS).contains(&count) {
        return Err(Error::invalid(
            "api_key",
            format!("must be {API_KEY_MIN_CHARS} to {API_KEY_MAX_CHARS} characters long, got {count}"),
        ));
    }
    Ok(())
}

/// One page of a listing: the request's size and token checked against the
/// listing's scope, and the token for the page after it.
pub struct Listing {
    scope: String,
    pub page: PageRequest,
}

impl Listing {
    /// `scope` names the listing, so a token cannot page another one.
    pub fn new(scope: impl Into<String>, page_size: i32, page_token: &str) -> Result<Self> {
        let scope = scope.into();
        let page = page(&scope, page_size, page_token)?;
        Ok(Self { scope, page })
    }

    /// The page's items as protobuf, and the next page's token (empty on
    /// the last page).
    pub fn finish<T, U: From<T>>(&self, rows: Page<T>, id: impl Fn(&T) -> &str) -> (Vec<U>, String) {
        let next = next_page_token(&self.scope, rows.has_more, rows.items.last().map(id));
        (rows.items.into_iter().map(U::from).collect(), next)
    }
}

/// Page tokens are opaque to clients: base64url of the listing they belong to
/// and the last id returned. A token from another listing is refused rather
/// than silently paging the wrong rows.
pub fn page(scope: &str, page_size: i32, page_token: &str) -> Result<PageRequest> {
    let size = match page_size {
        n if n < 0 => {
            return Err(Error::invalid("page_size", format!("cannot be negative, got {n}")));
        }
        0 => PAGE_SIZE_DEFAULT,
        n => usize::try_from(n).unwrap_or(PAGE_SIZE_MAX).min(PAGE_SIZE_MAX),
    };
    if page_token.is_empty() {
        return Ok(PageRequest { after: None, size });
    }
    let garbage =
        || Error::invalid("page_token", "is not a token this server issued; start again with an empty page_token");
    let decoded = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| garbage())?;
    let decoded = String::from_utf8(decoded).map_err(|_| garbage())?;
    let (token_scope, after) = decoded.split_once('\n').ok_or_else(garbage)?;
    if token_scope != scope {
        return Err(Error::invalid(
            "page_token",
            "belongs to a different listing; start again with an empty page_token",
        ));
    }
    uuid::Uuid::parse_str(after).map_err(|_| garbage())?;
    Ok(PageRequest { after: Some(after.to_owned()), size })
}

/// The token for the page after `last_id`, or empty when there is none.
pub fn next_page_token(scope: &str, has_more: bool, last_id: Option<&str>) -> String {
    match (has_more, last_id) {
        (true, Some(last)) => URL_SAFE_NO_PAD.encode(format!("{scope}\n{last}")),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let id = uuid::Uuid::now_v7().to_string();
        let token = next_page_token("characters", true, Some(&id));
        assert_eq!(page("characters", 10, &token).expect("valid").after.as_deref(), Some(id.as_str()));
        assert!(page("user_profiles", 10, &token).is_err());
        assert!(page("characters", 10, "garbage!").is_err());
        assert!(page("characters", 10, &URL_SAFE_NO_PAD.encode("characters\nnot-an-id")).is_err());
        assert!(page("characters", -1, "").is_err());
        assert_eq!(page("characters", 0, "").expect("default").size, PAGE_SIZE_DEFAULT);
        assert_eq!(page("characters", 100_000, "").expect("clamped").size, PAGE_SIZE_MAX);
        assert_eq!(next_page_token("characters", false, Some(&id)), "");
    }

    #[test]
    fn texts_are_checked_in_characters_not_bytes() {
        assert!(required("name", "é".repeat(200), 200).is_ok());
        assert!(required("name", "é".repeat(201), 200).is_err());
        assert!(required("name", " \t\n".into(), 200).is_err());
    }
}
