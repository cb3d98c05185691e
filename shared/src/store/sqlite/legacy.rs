//! The JSON data file of earlier versions (one snapshot of everything, rewritten on every
//! commit), read once to migrate it into a SQLite database.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{commit_writes, put_keyring_on, SqliteStore};
use crate::domain::{Client, JwtTemplate, Session, SignInToken, User};
use crate::store::{Expect, KeyringRecord, StoreError, Write};

#[derive(Deserialize)]
struct JsonDataFile {
    #[serde(default)]
    keyring: Option<KeyringRecord>,
    #[serde(default)]
    users: BTreeMap<String, User>,
    #[serde(default)]
    clients: BTreeMap<String, Client>,
    #[serde(default)]
    sessions: BTreeMap<String, Session>,
    #[serde(default)]
    sign_in_tokens: BTreeMap<String, SignInToken>,
    #[serde(default)]
    jwt_templates: BTreeMap<String, JwtTemplate>,
}

/// What a migration carried over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    pub users: usize,
    pub clients: usize,
    pub sessions: usize,
    pub sign_in_tokens: usize,
    pub jwt_templates: usize,
    pub keyring: bool,
}

impl std::fmt::Display for Migrated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} clients, {} sessions, {} sign-in tokens, {} JWT templates, {}",
            self.users,
            self.clients,
            self.sessions,
            self.sign_in_tokens,
            self.jwt_templates,
            if self.keyring {
                "the keyring"
            } else {
                "no keyring"
            }
        )
    }
}

/// Whether `path` holds a JSON data file of an earlier version (a JSON object).
pub fn is_json_data_file(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| b.iter().copied().find(|c| !c.is_ascii_whitespace()))
        == Some(b'{')
}

/// Copies every record of the JSON data file `from` into a new SQLite database `to`, in
/// one transaction (all or nothing). `from` is left as it was; `to` must not exist.
pub fn migrate_json_data_file(from: &Path, to: &Path) -> Result<Migrated, StoreError> {
    let bytes =
        std::fs::read(from).map_err(|e| StoreError::Fault(format!("{}: {e}", from.display())))?;
    let data: JsonDataFile = serde_json::from_slice(&bytes).map_err(|e| {
        StoreError::Fault(format!(
            "{} is not a readable data file: {e}",
            from.display()
        ))
    })?;
    if to.exists() {
        return Err(StoreError::Fault(format!(
            "{} exists already; the migration writes a new database",
            to.display()
        )));
    }
    let store = SqliteStore::open(to)?;
    let migrated = Migrated {
        users: data.users.len(),
        clients: data.clients.len(),
        sessions: data.sessions.len(),
        sign_in_tokens: data.sign_in_tokens.len(),
        jwt_templates: data.jwt_templates.len(),
        keyring: data.keyring.is_some(),
    };
    let mut writes = Vec::new();
    writes.extend(
        data.users
            .into_values()
            .map(|u| Write::User(u, Expect::Absent)),
    );
    writes.extend(
        data.clients
            .into_values()
            .map(|c| Write::Client(c, Expect::Absent)),
    );
    writes.extend(data.sessions.into_values().map(Write::NewSession));
    writes.extend(
        data.sign_in_tokens
            .into_values()
            .map(|t| Write::SignInToken(t, Expect::Absent)),
    );
    writes.extend(
        data.jwt_templates
            .into_values()
            .map(|t| Write::JwtTemplate(t, Expect::Absent)),
    );
    let mut conn = super::lock(&store.inner.writer);
    if let Some(keyring) = &data.keyring {
        put_keyring_on(&mut conn, keyring, Expect::Absent)?;
    }
    commit_writes(&mut conn, writes)?;
    // The users' email addresses and usernames, for sign-in.
    let tx = conn.transaction().map_err(super::sql)?;
    super::index_identifiers(&tx)?;
    tx.commit().map_err(super::sql)?;
    Ok(migrated)
}
