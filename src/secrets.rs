//! The master key and the encryption of secrets at rest (the provider API key).
//!
//! Stored format, one line of ASCII:
//!
//! ```text
//! v2:<key-id>:<base64url(origin)>:<base64(nonce ‖ ciphertext ‖ tag)>
//! ```
//!
//! - `v2` is the format version. `v1:<key-id>:<data>` values, written before
//!   keys were bound to a host, are still read (see `origin` below).
//! - `<key-id>` names the master key that encrypted the value (8 hex digits of
//!   a SHA-256 over the key), so a value encrypted under another key is
//!   reported as such rather than as tampering.
//! - The cipher is XChaCha20-Poly1305 with a fresh random 24-byte nonce per
//!   write: random nonces of that size cannot realistically collide.
//! - `<origin>` is the provider origin (`https://openrouter.ai`) the key was
//!   entered for. A key is only ever sent to that origin: a base URL moved to
//!   another host (by a page that could reach the settings, say) finds no key
//!   for it. It is in clear so the server can say which host a key belongs to.
//! - The associated data binds the setting's name, the key id and the origin,
//!   so a value copied into another setting's row, or edited to name another
//!   origin, does not decrypt.

use std::{
    fmt,
    fs::{self, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, Generate, Key, KeyInit, Payload},
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Values written before keys were bound to an origin.
const FORMAT_UNBOUND: &str = "v1";
const FORMAT_VERSION: &str = "v2";
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key must be 32 bytes encoded as base64")]
    BadMasterKey,
    #[error("master key file {path}: {source}")]
    KeyFile { path: String, source: io::Error },
    #[error("the stored secret is not in the v2:<key-id>:<origin>:<data> format")]
    Malformed,
    #[error("the stored secret was encrypted with master key {found}, which this server does not have (it has {ours})")]
    WrongKey { found: String, ours: String },
    #[error("the stored secret failed authentication: it was changed or belongs to another setting")]
    Tampered,
    #[error("the system random number generator failed")]
    Random,
}

/// The key that encrypts secrets at rest. Its bytes live only inside the
/// cipher; `Debug` shows the key id and nothing else.
pub struct MasterKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let digest = Sha256::new().chain_update(b"roleplay-server master key id\0").chain_update(bytes).finalize();
        let id = hex::encode(&digest[..4]);
        let key = Key::<XChaCha20Poly1305>::from(*bytes);
        Self { id, cipher: XChaCha20Poly1305::new(&key) }
    }

    /// Parses base64 of exactly 32 bytes (surrounding whitespace ignored).
    pub fn from_base64(encoded: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD.decode(encoded.trim()).map_err(|_| SecretError::BadMasterKey)?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| SecretError::BadMasterKey)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Reads the key file, or creates it with a new random key (mode 0600,
    /// never overwriting an existing file). Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SecretError> {
        let key_file_error = |source| SecretError::KeyFile { path: path.display().to_string(), source };
        match fs::read_to_string(path) {
            Ok(contents) => return Ok((Self::from_base64(&contents)?, false)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(key_file_error(err)),
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(key_file_error)?;
        }
        let key = Key::<XChaCha20Poly1305>::try_generate().map_err(|_| SecretError::Random)?;
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(key_file_error)?;
        file.write_all(STANDARD.encode(key.as_slice()).as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(key_file_error)?;
        Ok((Self::from_bytes(&key.into()), true))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts `plaintext` for the setting `name`, bound to the provider
    /// `origin` it may be sent to.
    pub fn encrypt(&self, name: &str, origin: &str, plaintext: &SecretString) -> Result<String, SecretError> {
        self.seal(name, Some(origin), plaintext)
    }

    /// `origin: None` writes the unbound v1 format: only to re-encrypt a v1
    /// value under a new master key without inventing an origin for it.
    fn seal(&self, name: &str, origin: Option<&str>, plaintext: &SecretString) -> Result<String, SecretError> {
        let nonce = XNonce::try_generate().map_err(|_| SecretError::Random)?;
        let aad = associated_data(name, &self.id, origin);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.expose_secret().as_bytes(), aad: &aad })
            .map_err(|_| SecretError::Random)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(nonce.as_slice());
        blob.extend_from_slice(&ciphertext);
        Ok(match origin {
            Some(origin) => {
                format!("{FORMAT_VERSION}:{}:{}:{}", self.id, URL_SAFE_NO_PAD.encode(origin), STANDARD.encode(blob))
            }
            None => format!("{FORMAT_UNBOUND}:{}:{}", self.id, STANDARD.encode(blob)),
        })
    }

    /// Decrypts a value written by [`MasterKey::encrypt`] for the same `name`.
    pub fn decrypt(&self, name: &str, stored: &str) -> Result<Opened, SecretError> {
        let sealed = Sealed::parse(stored)?;
        if sealed.key_id != self.id {
            return Err(SecretError::WrongKey { found: sealed.key_id.to_owned(), ours: self.id.clone() });
        }
        let blob = STANDARD.decode(sealed.data).map_err(|_| SecretError::Tampered)?;
        if blob.len() < NONCE_LEN {
            return Err(SecretError::Tampered);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| SecretError::Tampered)?;
        let aad = associated_data(name, &self.id, sealed.origin.as_deref());
        let plaintext =
            self.cipher.decrypt(&nonce, Payload { msg: ciphertext, aad: &aad }).map_err(|_| SecretError::Tampered)?;
        let plaintext = String::from_utf8(plaintext).map_err(|_| SecretError::Tampered)?;
        Ok(Opened { secret: SecretString::from(plaintext), origin: sealed.origin })
    }
}

/// A decrypted secret and the provider origin it was entered for.
#[derive(Debug)]
pub struct Opened {
    pub secret: SecretString,
    /// `None` for a v1 value, stored before keys were bound to an origin.
    pub origin: Option<String>,
}

/// The parts of a stored value.
struct Sealed<'a> {
    key_id: &'a str,
    origin: Option<String>,
    data: &'a str,
}

impl<'a> Sealed<'a> {
    fn parse(stored: &'a str) -> Result<Self, SecretError> {
        let mut parts = stored.split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(FORMAT_VERSION), Some(key_id), Some(origin), Some(data), None) => {
                let origin = URL_SAFE_NO_PAD.decode(origin).map_err(|_| SecretError::Malformed)?;
                let origin = String::from_utf8(origin).map_err(|_| SecretError::Malformed)?;
                Ok(Self { key_id, origin: Some(origin), data })
            }
            (Some(FORMAT_UNBOUND), Some(key_id), Some(data), None, None) => Ok(Self { key_id, origin: None, data }),
            _ => Err(SecretError::Malformed),
        }
    }
}

fn associated_data(name: &str, key_id: &str, origin: Option<&str>) -> Vec<u8> {
    match origin {
        Some(origin) => format!("{name}\0{key_id}\0{origin}").into_bytes(),
        None => format!("{name}\0{key_id}").into_bytes(),
    }
}

/// "sk-…abcd": enough to recognise a key, too little to use it. Keys shorter
/// than 16 characters show nothing.
pub fn api_key_hint(key: &SecretString) -> String {
    let key = key.expose_secret();
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 16 {
        return String::new();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// The id of the master key that encrypted a stored value.
pub fn key_id_of(stored: &str) -> Option<&str> {
    Sealed::parse(stored).ok().map(|sealed| sealed.key_id)
}

/// The origin a stored value is bound to (`None`: unbound, or malformed).
pub fn origin_of(stored: &str) -> Option<String> {
    Sealed::parse(stored).ok().and_then(|sealed| sealed.origin)
}

/// Every master key this server knows: the primary encrypts, all decrypt, so
/// values written under an older key stay readable until they are
/// re-encrypted (see `roleplay-server keys rotate`).
#[derive(Debug)]
pub struct Keyring {
    primary: MasterKey,
    older: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(primary: MasterKey, older: Vec<MasterKey>) -> Self {
        let older = older.into_iter().filter(|k| k.id != primary.id).collect();
        Self { primary, older }
    }

    pub fn single(primary: MasterKey) -> Self {
        Self::new(primary, Vec::new())
    }

    /// Keys from base64 strings separated by commas; the first is primary.
    pub fn from_base64_list(list: &str) -> Result<Self, SecretError> {
        let mut keys = list.split(',').filter(|k| !k.trim().is_empty()).map(MasterKey::from_base64);
        let primary = keys.next().ok_or(SecretError::BadMasterKey)??;
        Ok(Self::new(primary, keys.collect::<Result<_, _>>()?))
    }

    /// The primary key from `path` (created when missing), and older keys
    /// from `<dir>/*.key`.
    pub fn load(path: &Path, dir: &Path) -> Result<(Self, bool), SecretError> {
        let (primary, created) = MasterKey::load_or_create(path)?;
        let mut older = Vec::new();
        match fs::read_dir(dir) {
            Ok(entries) => {
                let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                paths.sort();
                for key_path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "key")) {
                    let contents = fs::read_to_string(&key_path)
                        .map_err(|source| SecretError::KeyFile { path: key_path.display().to_string(), source })?;
                    older.push(MasterKey::from_base64(&contents)?);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(SecretError::KeyFile { path: dir.display().to_string(), source }),
        }
        Ok((Self::new(primary, older), created))
    }

    pub fn primary(&self) -> &MasterKey {
        &self.primary
    }

    /// Every key id, the primary first.
    pub fn ids(&self) -> Vec<&str> {
        std::iter::once(self.primary.id()).chain(self.older.iter().map(MasterKey::id)).collect()
    }

    pub fn encrypt(&self, name: &str, origin: &str, plaintext: &SecretString) -> Result<String, SecretError> {
        self.primary.encrypt(name, origin, plaintext)
    }

    /// Re-encrypts a stored value under the primary key, bound to the same
    /// origin (or to none, for a v1 value).
    pub fn reseal(&self, name: &str, stored: &str) -> Result<String, SecretError> {
        let opened = self.decrypt(name, stored)?;
        self.primary.seal(name, opened.origin.as_deref(), &opened.secret)
    }

    /// Decrypts with whichever key the value names.
    pub fn decrypt(&self, name: &str, stored: &str) -> Result<Opened, SecretError> {
        let id = key_id_of(stored).ok_or(SecretError::Malformed)?;
        let key = std::iter::once(&self.primary)
            .chain(&self.older)
            .find(|k| k.id == id)
            .ok_or_else(|| SecretError::WrongKey { found: id.to_owned(), ours: self.ids().join(", ") })?;
        key.decrypt(name, stored)
    }

    /// Deletes the older key `id` from `dir`, where [`Keyring::rotate_files`]
    /// keeps it. The caller checks first that no stored value uses it.
    pub fn retire(dir: &Path, id: &str) -> Result<(), SecretError> {
        let path = dir.join(format!("{id}.key"));
        fs::remove_file(&path).map_err(|source| SecretError::KeyFile { path: path.display().to_string(), source })
    }

    /// Writes a new random primary key file, keeping the old primary in
    /// `dir` as `<id>.key`. Returns the new keyring.
    pub fn rotate_files(self, path: &Path, dir: &Path) -> Result<Self, SecretError> {
        let io_error = |source, at: &Path| SecretError::KeyFile { path: at.display().to_string(), source };
        fs::create_dir_all(dir).map_err(|e| io_error(e, dir))?;
        let old_path = dir.join(format!("{}.key", self.primary.id()));
        fs::copy(path, &old_path).map_err(|e| io_error(e, &old_path))?;
        let staged = path.with_extension("key.new");
        let _ = fs::remove_file(&staged);
        let (new_primary, _) = MasterKey::load_or_create(&staged)?;
        fs::rename(&staged, path).map_err(|e| io_error(e, path))?;
        let mut older = self.older;
        older.insert(0, self.primary);
        Ok(Self::new(new_primary, older))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; KEY_LEN])
    }

    const ORIGIN: &str = "https://openrouter.ai";

    #[test]
    fn round_trips_and_uses_fresh_nonces() {
        let k = key(7);
        let secret = SecretString::from("sk-or-v1-abcdef0123456789");
        let a = k.encrypt("provider_api_key", ORIGIN, &secret).expect("encrypt");
        let b = k.encrypt("provider_api_key", ORIGIN, &secret).expect("encrypt");
        assert_ne!(a, b, "each write has its own nonce");
        assert!(a.starts_with(&format!("v2:{}:", k.id())));
        assert!(!a.contains("abcdef"));
        let back = k.decrypt("provider_api_key", &a).expect("decrypt");
        assert_eq!(back.secret.expose_secret(), secret.expose_secret());
        assert_eq!(back.origin.as_deref(), Some(ORIGIN));
        assert_eq!(origin_of(&a).as_deref(), Some(ORIGIN));
    }

    #[test]
    fn rejects_other_names_keys_origins_and_flipped_bytes() {
        let k = key(7);
        let stored = k.encrypt("provider_api_key", ORIGIN, &SecretString::from("sk-secret-value")).expect("encrypt");
        assert!(matches!(k.decrypt("other_setting", &stored), Err(SecretError::Tampered)));
        assert!(matches!(key(8).decrypt("provider_api_key", &stored), Err(SecretError::WrongKey { .. })));
        assert!(matches!(k.decrypt("provider_api_key", "garbage"), Err(SecretError::Malformed)));

        // Naming another origin in clear does not move the key there.
        let parts: Vec<&str> = stored.split(':').collect();
        let moved = format!("v2:{}:{}:{}", parts[1], URL_SAFE_NO_PAD.encode("https://attacker.example"), parts[3]);
        assert!(matches!(k.decrypt("provider_api_key", &moved), Err(SecretError::Tampered)));

        let prefix_len = stored.rfind(':').expect("colon") + 1;
        let mut blob = STANDARD.decode(&stored[prefix_len..]).expect("base64");
        for i in 0..blob.len() {
            blob[i] ^= 1;
            let flipped = format!("{}{}", &stored[..prefix_len], STANDARD.encode(&blob));
            assert!(matches!(k.decrypt("provider_api_key", &flipped), Err(SecretError::Tampered)));
            blob[i] ^= 1;
        }
    }

    #[test]
    fn unbound_v1_values_are_read_and_resealed_unbound() {
        let k = key(7);
        let v1 = k.seal("provider_api_key", None, &SecretString::from("sk-legacy-value")).expect("seal");
        assert!(v1.starts_with(&format!("v1:{}:", k.id())));
        let opened = k.decrypt("provider_api_key", &v1).expect("decrypt");
        assert_eq!((opened.secret.expose_secret(), opened.origin), ("sk-legacy-value", None));
        let ring = Keyring::new(key(9), vec![key(7)]);
        let resealed = ring.reseal("provider_api_key", &v1).expect("reseal");
        assert!(resealed.starts_with(&format!("v1:{}:", key(9).id())), "{resealed}");
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/master.key");
        let (first, created) = MasterKey::load_or_create(&path).expect("create");
        assert!(created);
        let (second, created) = MasterKey::load_or_create(&path).expect("load");
        assert!(!created);
        assert_eq!(first.id(), second.id());
        let mode = fs::metadata(&path).expect("metadata").permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        assert!(!format!("{first:?}").contains(&fs::read_to_string(&path).expect("read")));
    }

    #[test]
    fn a_keyring_decrypts_with_any_of_its_keys_and_names_a_missing_one() {
        let old = key(1);
        let stored = old.encrypt("provider_api_key", ORIGIN, &SecretString::from("sk-old-secret")).expect("encrypt");
        let ring = Keyring::new(key(2), vec![key(1)]);
        let opened = ring.decrypt("provider_api_key", &stored).expect("older key");
        assert_eq!(opened.secret.expose_secret(), "sk-old-secret");
        assert_eq!(
            key_id_of(&ring.encrypt("x", ORIGIN, &SecretString::from("v")).expect("encrypt")),
            Some(key(2).id())
        );
        let resealed = ring.reseal("provider_api_key", &stored).expect("reseal");
        assert_eq!((key_id_of(&resealed), origin_of(&resealed).as_deref()), (Some(key(2).id()), Some(ORIGIN)));
        let without = Keyring::single(key(2));
        let err = without.decrypt("provider_api_key", &stored).expect_err("missing key");
        assert!(err.to_string().contains(key(1).id()), "names the missing key: {err}");
    }

    #[test]
    fn hints_show_only_the_ends() {
        assert_eq!(api_key_hint(&SecretString::from("sk-or-v1-0123456789abcd")), "sk-…abcd");
        assert_eq!(api_key_hint(&SecretString::from("short-key")), "");
    }
}
