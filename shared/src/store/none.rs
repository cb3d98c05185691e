//! The store of a process that holds none: `GET /v1/environment` is built from
//! configuration alone, so its function opens no store (and links no store code).

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    ClientState, Expect, Identifier, JwtTemplate, KeyringRecord, PublicKeysRecord, Session,
    SessionFilter, SignInToken, Store, StoreError, User, Write,
};

/// Answers every call with a fault. Its routes never call it; should one ever start to,
/// the answer is a 5xx ClerkErrors body, not a wrong answer.
pub struct NoStore;

fn none<T>() -> Result<T, StoreError> {
    Err(StoreError::Fault("this function holds no store".into()))
}

#[async_trait]
impl Store for NoStore {
    async fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        none()
    }
    async fn public_keys(&self) -> Result<Option<PublicKeysRecord>, StoreError> {
        none()
    }
    async fn put_keyring(&self, _: KeyringRecord, _: Expect) -> Result<(), StoreError> {
        none()
    }
    async fn get_user(&self, _: &str) -> Result<Option<User>, StoreError> {
        none()
    }
    async fn get_users(&self, _: &[String]) -> Result<Vec<Arc<User>>, StoreError> {
        none()
    }
    async fn get_sign_in_token(&self, _: &str) -> Result<Option<SignInToken>, StoreError> {
        none()
    }
    async fn get_identifier(&self, _: &str) -> Result<Option<Identifier>, StoreError> {
        none()
    }
    async fn get_client(&self, _: &str) -> Result<Option<ClientState>, StoreError> {
        none()
    }
    async fn get_session(&self, _: &str) -> Result<Option<Session>, StoreError> {
        none()
    }
    async fn list_sessions(&self, _: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        none()
    }
    async fn get_jwt_template(&self, _: &str) -> Result<Option<JwtTemplate>, StoreError> {
        none()
    }
    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplate>, StoreError> {
        none()
    }
    async fn list_webhook_endpoints(
        &self,
    ) -> Result<Vec<crate::webhooks::WebhookEndpoint>, StoreError> {
        none()
    }
    async fn commit(&self, _: Vec<Write>) -> Result<(), StoreError> {
        none()
    }
}
