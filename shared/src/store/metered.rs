//! Any store, counted and timed: every call of the [`Store`] trait through
//! [`Metrics::store_call`]. `AppState` wraps the store it is given in one.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Expect, KeyringRecord, PublicKeysRecord, SessionFilter, Store, StoreError, Write};
use crate::domain::{ClientState, Identifier, JwtTemplate, Session, SignInToken, User};
use crate::metrics::{Metrics, StoreOp};

pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Metrics,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        let call = self.inner.keyring();
        self.metrics.store_call(StoreOp::Keyring, call).await
    }
    async fn public_keys(&self) -> Result<Option<PublicKeysRecord>, StoreError> {
        let call = self.inner.public_keys();
        self.metrics.store_call(StoreOp::PublicKeys, call).await
    }
    async fn put_keyring(&self, keyring: KeyringRecord, expect: Expect) -> Result<(), StoreError> {
        let call = self.inner.put_keyring(keyring, expect);
        self.metrics.store_call(StoreOp::PutKeyring, call).await
    }
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let call = self.inner.get_user(id);
        self.metrics.store_call(StoreOp::GetUser, call).await
    }
    async fn get_users(&self, ids: &[String]) -> Result<Vec<Arc<User>>, StoreError> {
        let call = self.inner.get_users(ids);
        self.metrics.store_call(StoreOp::GetUsers, call).await
    }
    async fn get_sign_in_token(
        &self,
        ticket_hash: &str,
    ) -> Result<Option<SignInToken>, StoreError> {
        let call = self.inner.get_sign_in_token(ticket_hash);
        self.metrics.store_call(StoreOp::GetSignInToken, call).await
    }
    async fn get_identifier(&self, key: &str) -> Result<Option<Identifier>, StoreError> {
        let call = self.inner.get_identifier(key);
        self.metrics.store_call(StoreOp::GetIdentifier, call).await
    }
    async fn get_client(&self, id: &str) -> Result<Option<ClientState>, StoreError> {
        let call = self.inner.get_client(id);
        self.metrics.store_call(StoreOp::GetClient, call).await
    }
    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let call = self.inner.get_session(id);
        self.metrics.store_call(StoreOp::GetSession, call).await
    }
    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        let call = self.inner.list_sessions(filter);
        self.metrics.store_call(StoreOp::ListSessions, call).await
    }
    async fn get_jwt_template(&self, name: &str) -> Result<Option<JwtTemplate>, StoreError> {
        let call = self.inner.get_jwt_template(name);
        self.metrics.store_call(StoreOp::GetJwtTemplate, call).await
    }
    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplate>, StoreError> {
        let call = self.inner.list_jwt_templates();
        self.metrics
            .store_call(StoreOp::ListJwtTemplates, call)
            .await
    }
    async fn list_webhook_endpoints(
        &self,
    ) -> Result<Vec<crate::webhooks::WebhookEndpoint>, StoreError> {
        let call = self.inner.list_webhook_endpoints();
        self.metrics
            .store_call(StoreOp::ListWebhookEndpoints, call)
            .await
    }
    fn outbox(&self) -> Option<&dyn crate::store::Outbox> {
        self.inner.outbox()
    }
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let call = self.inner.commit(writes);
        self.metrics.store_call(StoreOp::Commit, call).await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}
