//! Master-key operations on stored secrets: which key each encrypted value
//! uses, and re-encrypting them all under the primary (`keys rotate`).

use std::collections::BTreeMap;

use crate::{
    error::{Error, Result},
    secrets::{Keyring, key_id_of},
    settings::names::is_secret,
    store::Store,
};

/// How many stored values each key id encrypts.
pub async fn usage(store: &Store) -> Result<BTreeMap<String, usize>> {
    let settings = store.all_settings().await?;
    let mut counts = BTreeMap::new();
    for (_, value) in settings.iter().filter(|(name, _)| is_secret(name)) {
        if let Some(id) = key_id_of(value) {
            *counts.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Re-encrypts every stored secret not already under the primary key.
/// Returns how many were rewritten. A value no key can decrypt is an error
/// naming the key it needs; nothing after it is rewritten.
pub async fn reencrypt_all(store: &Store, keys: &Keyring) -> Result<usize> {
    let settings = store.all_settings().await?;
    let primary = keys.primary().id();
    let mut rewritten = 0;
    for (name, stored) in settings.iter().filter(|(name, _)| is_secret(name)) {
        if key_id_of(stored) == Some(primary) {
            continue;
        }
        // The value keeps the provider origin it is bound to.
        let ciphertext =
            keys.reseal(name, stored).map_err(|source| Error::KeyNotReencrypted { name: name.clone(), source })?;
        store.put_settings(&[(name, &ciphertext)]).await?;
        rewritten += 1;
    }
    Ok(rewritten)
}
