//! Users, their API tokens, and who is calling.
//!
//! A token is 32 random bytes (base64url); only its SHA-256 is stored. The
//! first 16 hex digits of the hash find the row by index and the whole hash
//! is then compared in constant time, so how long a lookup takes says
//! nothing an attacker could use. Tokens are checked against the database
//! on every call, so a revocation (from this server or the CLI of another
//! process) takes effect at once.
//!
//! Until any user has a token the server is in single-user mode: calls
//! without a token are made as the built-in admin user "local" (and
//! `main` refuses to serve a non-loopback address that way).

use std::{
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    error::{Error, Result},
    store::{Page, PageRequest, Store, models::User, new_id, now},
};

/// The user of single-user mode and the owner of data stored before users
/// existed (created by the users migration).
pub const LOCAL_USER_ID: &str = "00000000-0000-0000-0000-000000000000";
pub const LOCAL_USER_NAME: &str = "local";

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;
/// Hex digits of the hash used to find a token's row.
const LOOKUP_HEX_DIGITS: usize = 16;
/// How long "no token has been issued" is trusted before it is read again:
/// a user added by the CLI of another process closes single-user mode
/// within this time (one added through this server, at once).
const OPEN_MODE_RECHECK: Duration = Duration::from_secs(1);

/// Who is making a call, as the RPC handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub name: String,
    pub admin: bool,
}

impl Caller {
    pub fn local() -> Self {
        Self { user_id: LOCAL_USER_ID.to_owned(), name: LOCAL_USER_NAME.to_owned(), admin: true }
    }

    pub fn require_admin(&self, action: &'static str) -> Result<()> {
        if self.admin { Ok(()) } else { Err(Error::AdminOnly { action }) }
    }
}

/// A freshly issued token: shown once, never stored.
pub struct IssuedToken {
    pub user: User,
    pub token: SecretString,
}

/// The stored form of a token.
struct TokenHash {
    lookup: String,
    hash: String,
}

impl TokenHash {
    fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        let hash = hex::encode(digest);
        Self { lookup: hash[..LOOKUP_HEX_DIGITS].to_owned(), hash }
    }

    fn matches(&self, stored: &str) -> bool {
        self.hash.as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

fn new_token() -> Result<SecretString> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|err| Error::Random(err.to_string()))?;
    Ok(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
}

/// Whether a presented token has the shape of one this server issues; other
/// strings are refused without a database query.
fn well_formed(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Resolves the `authorization` metadata of a call to a [`Caller`].
pub struct Authenticator {
    store: Store,
    /// Once a token exists the server never returns to single-user mode
    /// (revoking keeps the hash), so `true` is final.
    tokens_required: AtomicBool,
    /// When single-user mode was last confirmed.
    open_checked: Mutex<Option<Instant>>,
}

impl Authenticator {
    pub fn new(store: Store) -> Self {
        Self { store, tokens_required: AtomicBool::new(false), open_checked: Mutex::new(None) }
    }

    /// `authorization` is the metadata value as sent, if any.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller> {
        let Some(value) = authorization else {
            return if self.tokens_required().await? {
                Err(Error::Unauthenticated {
                    why: "this server requires a token: send the metadata `authorization: Bearer <token>`",
                })
            } else {
                Ok(Caller::local())
            };
        };
        let token = bearer_token(value)?;
        let invalid = || Error::Unauthenticated { why: "the token is not valid" };
        if !well_formed(token) {
            return Err(invalid());
        }
        let presented = TokenHash::of(token);
        let user = self.store.user_by_token_lookup(&presented.lookup).await?.ok_or_else(invalid)?;
        if !user.token_hash.as_deref().is_some_and(|stored| presented.matches(stored)) {
            return Err(invalid());
        }
        if user.revoked_at.is_some() {
            return Err(Error::Unauthenticated { why: "the token was revoked" });
        }
        Ok(Caller { user_id: user.id, name: user.name, admin: user.is_admin })
    }

    /// Whether calls must carry a token (some user has one).
    pub async fn tokens_required(&self) -> Result<bool> {
        if self.tokens_required.load(Ordering::Acquire) {
            return Ok(true);
        }
        let recent = self
            .open_checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < OPEN_MODE_RECHECK);
        if recent {
            return Ok(false);
        }
        let required = self.store.any_token_issued().await?;
        if required {
            self.tokens_required.store(true, Ordering::Release);
        } else {
            *self.open_checked.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        Ok(required)
    }

    /// Called after this server issued a token: single-user mode ends now.
    fn token_issued(&self) {
        self.tokens_required.store(true, Ordering::Release);
    }
}

/// `Bearer <token>`; the scheme is case-insensitive (RFC 7235).
fn bearer_token(value: &str) -> Result<&str> {
    let malformed = || Error::Unauthenticated { why: "the authorization metadata must be `Bearer <token>`" };
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed());
    }
    Ok(token.trim())
}

/// What user and fallback provider names may be.
pub const NAME_RULE: &str = "must be 1 to 64 letters, digits, '-', '_' or '.'";

/// Whether `name` follows [`NAME_RULE`]: short, and safe in logs, URLs and
/// setting names (no ':' or spaces).
pub fn is_plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A user name: see [`NAME_RULE`].
pub fn validate_name(name: &str) -> Result<()> {
    if is_plain_name(name) { Ok(()) } else { Err(Error::invalid(format!("user name {name:?}"), NAME_RULE)) }
}

/// Creates a user with a first token.
pub async fn create(
    store: &impl AsRef<Store>,
    auth: Option<&Authenticator>,
    name: &str,
    admin: bool,
) -> Result<IssuedToken> {
    let store = store.as_ref();
    validate_name(name)?;
    let token = new_token()?;
    let hash = TokenHash::of(token.expose_secret());
    let user = User {
        id: new_id(),
        name: name.to_owned(),
        is_admin: admin,
        token_lookup: Some(hash.lookup),
        token_hash: Some(hash.hash),
        created_at: now(),
        revoked_at: None,
    };
    match store.insert_user(&user).await {
        Ok(()) => {}
        Err(err) if err.is_unique_violation() => {
            return Err(Error::NameTaken { name: name.to_owned() });
        }
        Err(err) => return Err(err.into()),
    }
    if let Some(auth) = auth {
        auth.token_issued();
    }
    Ok(IssuedToken { user, token })
}

/// A new token for a user (by id or name); the old one stops working and a
/// revocation is lifted.
pub async fn issue_token(store: &impl AsRef<Store>, auth: Option<&Authenticator>, user: &str) -> Result<IssuedToken> {
    let store = store.as_ref();
    let found = find(store, user).await?;
    let token = new_token()?;
    let hash = TokenHash::of(token.expose_secret());
    let user = store
        .set_user_token(&found.id, &hash.lookup, &hash.hash)
        .await?
        .ok_or_else(|| Error::not_found("user", user))?;
    if let Some(auth) = auth {
        auth.token_issued();
    }
    Ok(IssuedToken { user, token })
}

/// Revokes a user's token (by id or name); their data stays.
pub async fn revoke(store: &impl AsRef<Store>, user: &str) -> Result<User> {
    let store = store.as_ref();
    let found = find(store, user).await?;
    store.revoke_user(&found.id).await?.ok_or_else(|| Error::not_found("user", user))
}

pub async fn find(store: &impl AsRef<Store>, user: &str) -> Result<User> {
    let store = store.as_ref();
    if user.trim().is_empty() {
        return Err(Error::invalid("user", "is required: give a user id or name"));
    }
    store.find_user(user).await?.ok_or_else(|| Error::not_found("user", user))
}

pub async fn list(store: &impl AsRef<Store>, page: &PageRequest) -> Result<Page<User>> {
    let store = store.as_ref();
    Ok(store.list_users(page).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_base64url_characters_and_differ() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert!(well_formed(a.expose_secret()));
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn a_hash_matches_only_its_token() {
        let hash = TokenHash::of("abc");
        assert_eq!(hash.hash.len(), 64);
        assert!(hash.hash.starts_with(&hash.lookup));
        assert!(hash.matches(&TokenHash::of("abc").hash));
        assert!(!hash.matches(&TokenHash::of("abd").hash));
        assert!(!hash.matches(""));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer_token("Bearer xyz").ok(), Some("xyz"));
        assert_eq!(bearer_token("bearer   xyz ").ok(), Some("xyz"));
        assert!(bearer_token("Basic xyz").is_err());
        assert!(bearer_token("xyz").is_err());
    }
}
