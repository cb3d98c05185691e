use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lockout::Lockout;
use super::password::PasswordDigest;
use crate::clock::Millis;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmailAddress {
    pub id: String,
    pub email_address: String,
    pub verified: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhoneNumber {
    pub id: String,
    pub phone_number: String,
    pub verified: bool,
}

/// A user, created through the Backend API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
    pub email_addresses: Vec<EmailAddress>,
    pub phone_numbers: Vec<PhoneNumber>,
    pub primary_email_address_id: Option<String>,
    pub primary_phone_number_id: Option<String>,
    pub public_metadata: Map<String, Value>,
    pub private_metadata: Map<String, Value>,
    pub unsafe_metadata: Map<String, Value>,
    pub last_sign_in_at: Option<Millis>,
    /// Banned through the Backend API: no sign-in until unbanned. Absent in records stored
    /// before bans existed, which were not banned.
    #[serde(default)]
    pub banned: bool,
    /// The password's digest (never the password); absent for a user without one, and in
    /// records stored before passwords existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordDigest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_last_updated_at: Option<Millis>,
    /// Failed password and code attempts, and the lock they led to.
    #[serde(default, skip_serializing_if = "Lockout::is_clear")]
    pub lockout: Lockout,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub version: u64,
}

/// What the Backend API accepts to create a user, already checked.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
    pub email_addresses: Vec<String>,
    pub phone_numbers: Vec<String>,
    pub public_metadata: Map<String, Value>,
    pub private_metadata: Map<String, Value>,
    pub unsafe_metadata: Map<String, Value>,
    /// Already hashed (or an imported digest, checked): hashing is the caller's, off the
    /// request's thread.
    pub password: Option<PasswordDigest>,
}

impl User {
    pub fn create(new: NewUser, now: Millis) -> Self {
        let email_addresses: Vec<EmailAddress> = new
            .email_addresses
            .into_iter()
            .map(|email_address| EmailAddress {
                id: crate::ids::new_id("idn"),
                email_address,
                // Addresses given by the Backend API are trusted as verified, as in Clerk.
                verified: true,
            })
            .collect();
        let phone_numbers: Vec<PhoneNumber> = new
            .phone_numbers
            .into_iter()
            .map(|phone_number| PhoneNumber {
                id: crate::ids::new_id("idn"),
                phone_number,
                verified: true,
            })
            .collect();
        Self {
            id: crate::ids::new_id("user"),
            external_id: new.external_id,
            first_name: new.first_name,
            last_name: new.last_name,
            username: new.username,
            image_url: new.image_url,
            primary_email_address_id: email_addresses.first().map(|e| e.id.clone()),
            primary_phone_number_id: phone_numbers.first().map(|p| p.id.clone()),
            email_addresses,
            phone_numbers,
            public_metadata: new.public_metadata,
            private_metadata: new.private_metadata,
            unsafe_metadata: new.unsafe_metadata,
            last_sign_in_at: None,
            banned: false,
            password_last_updated_at: new.password.is_some().then_some(now),
            password: new.password,
            lockout: Lockout::default(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// The user banned or unbanned at `now`.
    pub fn with_banned(&self, banned: bool, now: Millis) -> Self {
        Self {
            banned,
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The user with `password` as its new password's digest, set at `now`.
    pub fn with_password(&self, password: PasswordDigest, now: Millis) -> Self {
        Self {
            password: Some(password),
            password_last_updated_at: Some(now),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The user with its failed attempts counted anew (the next version).
    pub fn with_lockout(&self, lockout: Lockout) -> Self {
        Self {
            lockout,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The user as signed in at `now`.
    pub fn signed_in(&self, now: Millis) -> Self {
        Self {
            last_sign_in_at: Some(now),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    pub fn primary_email(&self) -> Option<&EmailAddress> {
        let id = self.primary_email_address_id.as_deref()?;
        self.email_addresses.iter().find(|e| e.id == id)
    }

    pub fn primary_phone(&self) -> Option<&PhoneNumber> {
        let id = self.primary_phone_number_id.as_deref()?;
        self.phone_numbers.iter().find(|p| p.id == id)
    }

    /// What Clerk shows as the user's identifier: primary email, else username, else phone.
    pub fn identifier(&self) -> String {
        self.primary_email()
            .map(|e| e.email_address.clone())
            .or_else(|| self.username.clone())
            .or_else(|| self.primary_phone().map(|p| p.phone_number.clone()))
            .unwrap_or_default()
    }
}
