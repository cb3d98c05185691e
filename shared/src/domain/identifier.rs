//! Identifiers: what a user signs in with (an email address, a username), each held by
//! at most one user. The store keeps one record per identifier, written in the same
//! commit as the user, so two sign-ups with one address cannot both land, and a sign-in
//! finds its user by one read instead of a search.

use serde::{Deserialize, Serialize};

use super::User;

/// Who holds an identifier. `key` is its normalised form ([`email_key`], [`username_key`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    pub key: String,
    pub user_id: String,
}

/// A username as this service accepts one: 4 to 64 letters, digits, `_` or `-`.
pub fn valid_username(username: &str) -> bool {
    (4..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The key of an email address: compared without regard to case, as Clerk does.
pub fn email_key(address: &str) -> String {
    format!("email:{}", address.trim().to_lowercase())
}

/// The key of a username, without regard to case.
pub fn username_key(username: &str) -> String {
    format!("username:{}", username.trim().to_lowercase())
}

/// The key of what a caller typed at sign-in: an email address when it has an `@`, else a
/// username.
pub fn key_of_typed(identifier: &str) -> String {
    if identifier.contains('@') {
        email_key(identifier)
    } else {
        username_key(identifier)
    }
}

impl User {
    /// The keys of every identifier the user holds (email addresses, username).
    pub fn identifier_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .email_addresses
            .iter()
            .map(|e| email_key(&e.email_address))
            .collect();
        keys.extend(self.username.as_deref().map(username_key));
        keys.sort();
        keys.dedup();
        keys
    }
}

/// What changes between a user as stored (`before`, `None` for a new user) and as it will
/// be (`after`, `None` for a deleted one): the identifiers to take and to give up.
pub fn changed_identifiers(
    before: Option<&User>,
    after: Option<&User>,
) -> (Vec<String>, Vec<String>) {
    let old = before.map(User::identifier_keys).unwrap_or_default();
    let new = after.map(User::identifier_keys).unwrap_or_default();
    let taken = new.iter().filter(|k| !old.contains(k)).cloned().collect();
    let released = old.iter().filter(|k| !new.contains(k)).cloned().collect();
    (taken, released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NewUser;

    #[test]
    fn keys_ignore_case_and_a_typed_identifier_is_told_apart() {
        assert_eq!(email_key(" Ada@Example.COM"), "email:ada@example.com");
        assert_eq!(key_of_typed("ADA@example.com"), "email:ada@example.com");
        assert_eq!(key_of_typed("Ada_L"), "username:ada_l");
    }

    #[test]
    fn a_change_takes_the_new_identifiers_and_gives_up_the_old() {
        let before = User::create(
            NewUser {
                email_addresses: vec!["a@example.com".into(), "b@example.com".into()],
                username: Some("ada".into()),
                ..NewUser::default()
            },
            0,
        );
        let mut after = before.clone();
        after.email_addresses.remove(0);
        after.username = Some("lovelace".into());
        let (taken, released) = changed_identifiers(Some(&before), Some(&after));
        assert_eq!(taken, vec!["username:lovelace"]);
        assert_eq!(released, vec!["email:a@example.com", "username:ada"]);
        let (taken, released) = changed_identifiers(None, Some(&before));
        assert_eq!(taken.len(), 3);
        assert!(released.is_empty());
    }
}
