//! The command line's management commands: `users ...` and `keys ...`, run
//! straight on the database (a running server sees the change at its next
//! call, or, for keys, after a restart), and loading the master keys.

use secrecy::ExposeSecret;

use crate::{
    config::{Config, KeysCommand, UsersCommand},
    keys,
    secrets::{Keyring, MasterKey},
    store::{PageRequest, Store},
    users,
};

/// `users add | list | token | revoke`, straight on the database; a running
/// server sees the change at its next call.
pub async fn manage_users(config: &Config, action: UsersCommand) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&config.database_url, 1).await?;
    match action {
        UsersCommand::Add { name, admin } => {
            let created = users::create(&store, None, &name, admin).await?;
            // The token alone on stdout, so scripts can capture it.
            println!("{}", created.token.expose_secret());
            eprintln!(
                "created {}user {} ({}); the token above is shown only once",
                if admin { "admin " } else { "" },
                created.user.name,
                created.user.id
            );
        }
        UsersCommand::List => {
            let mut page = PageRequest { after: None, size: 500 };
            loop {
                let rows = users::list(&store, &page).await?;
                for user in &rows.items {
                    let state = if user.revoked_at.is_some() {
                        "revoked"
                    } else if user.token_hash.is_some() {
                        "active"
                    } else {
                        "no token"
                    };
                    let role = if user.is_admin { "admin" } else { "user" };
                    println!("{}  {:<24}  {role:<5}  {state}", user.id, user.name);
                }
                match rows.items.last() {
                    Some(last) if rows.has_more => page.after = Some(last.id.clone()),
                    _ => break,
                }
            }
        }
        UsersCommand::Token { user } => {
            let issued = users::issue_token(&store, None, &user).await?;
            println!("{}", issued.token.expose_secret());
            eprintln!("new token for {}; the previous one no longer works", issued.user.name);
        }
        UsersCommand::Revoke { user } => {
            let revoked = users::revoke(&store, &user).await?;
            eprintln!("revoked {} ({}); their token no longer works", revoked.name, revoked.id);
        }
    }
    Ok(())
}

pub fn load_keyring(config: &Config) -> Result<Keyring, Box<dyn std::error::Error>> {
    if let Some(list) = &config.master_keys {
        let keys = Keyring::from_base64_list(list.expose_secret())?;
        tracing::info!(primary = keys.primary().id(), keys = ?keys.ids(), "using the master keys from ROLEPLAY_MASTER_KEYS");
        return Ok(keys);
    }
    if let Some(encoded) = &config.master_key {
        let keys = Keyring::single(MasterKey::from_base64(encoded.expose_secret())?);
        tracing::info!(primary = keys.primary().id(), "using the master key from ROLEPLAY_MASTER_KEY");
        return Ok(keys);
    }
    let path = &config.master_key_file;
    let (keys, created) = Keyring::load(path, &config.master_key_dir())?;
    if created {
        tracing::info!(path = %path.display(), primary = keys.primary().id(), "created a new master key file; back it up: without it the stored API key cannot be read");
    } else {
        tracing::info!(path = %path.display(), primary = keys.primary().id(), keys = ?keys.ids(), "loaded the master keys");
    }
    Ok(keys)
}

/// `keys list | rotate | retire`: run against the database while the server
/// is stopped (or restart it afterwards, so it loads the new keys).
pub async fn manage_keys(config: &Config, action: KeysCommand) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&config.database_url, 1).await?;
    let file_based = config.master_keys.is_none() && config.master_key.is_none();
    let keys = load_keyring(config)?;
    let dir = config.master_key_dir();
    match action {
        KeysCommand::List => {
            let usage = keys::usage(&store).await?;
            for (index, id) in keys.ids().into_iter().enumerate() {
                let role = if index == 0 { "primary" } else { "older" };
                println!("{id}  {role:7}  {} stored value(s)", usage.get(id).copied().unwrap_or(0));
            }
            for (id, count) in usage.iter().filter(|(id, _)| !keys.ids().contains(&id.as_str())) {
                println!("{id}  MISSING  {count} stored value(s) cannot be decrypted");
            }
        }
        KeysCommand::Rotate => {
            if !file_based {
                return Err("keys come from ROLEPLAY_MASTER_KEY(S): put a new key first in ROLEPLAY_MASTER_KEYS and restart; rotate manages the key file and directory".into());
            }
            let old = keys.primary().id().to_owned();
            let keys = keys.rotate_files(&config.master_key_file, &dir)?;
            let rewritten = keys::reencrypt_all(&store, &keys).await?;
            println!(
                "new primary key {}; re-encrypted {rewritten} stored value(s); key {old} kept in {} until retired. Restart the server to use the new key.",
                keys.primary().id(),
                dir.display()
            );
        }
        KeysCommand::Retire { id } => {
            if id == keys.primary().id() {
                return Err(format!("key {id} is the primary key; rotate first").into());
            }
            let in_use = keys::usage(&store).await?.get(&id).copied().unwrap_or(0);
            if in_use > 0 {
                return Err(format!("key {id} still encrypts {in_use} stored value(s); run `keys rotate` first").into());
            }
            Keyring::retire(&dir, &id)?;
            println!("retired key {id}");
        }
    }
    Ok(())
}
