//! One delivery attempt: the event's payload POSTed to an endpoint, signed with its
//! secrets. The same code delivers from the embedded store's outbox and from the Lambda
//! function fed by DynamoDB Streams and SQS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::address::CheckedConnector;
use super::{parse_url, signing, Event, WebhookEndpoint};
use crate::clock::Millis;
use crate::keyring::Sealer;

/// How long a receiver has to answer (Svix allows 15 s).
const TIMEOUT: Duration = Duration::from_secs(15);
/// What is read of a receiver's answer before it is dropped: only the status counts.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An HTTP(S) client for deliveries: the system's root certificates, HTTP/1.1,
/// connections kept alive between attempts, and only to public addresses (loopback too
/// with `allow_loopback`): every address a name resolves to is checked before connecting
/// (`super::address`).
#[derive(Clone)]
pub struct Sender {
    client: Client<hyper_rustls::HttpsConnector<CheckedConnector>, Full<Bytes>>,
    /// Endpoints' secrets once opened, by endpoint id: opening one is a KMS call on AWS,
    /// so it is made once per endpoint version (a rotation is a new version), not per
    /// attempt.
    opened: Arc<Mutex<HashMap<String, OpenedSecrets>>>,
}

#[derive(Clone)]
struct OpenedSecrets {
    version: u64,
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl Sender {
    /// `allow_loopback`: `WEBHOOK_ALLOW_LOOPBACK` (config's `webhooks.allow_loopback`).
    pub fn new(allow_loopback: bool) -> std::io::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(CheckedConnector::new(allow_loopback));
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            opened: Arc::default(),
        })
    }

    /// The keys `endpoint` signs with at `now`: its secret, and the one before a recent
    /// rotation.
    async fn keys(
        &self,
        sealer: &Sealer,
        endpoint: &WebhookEndpoint,
        now: Millis,
    ) -> Result<Vec<Vec<u8>>, String> {
        let cached = self
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&endpoint.id)
            .filter(|o| o.version == endpoint.version)
            .cloned();
        let opened = match cached {
            Some(opened) => opened,
            None => {
                let open = |sealed| sealer.open(&endpoint.id, sealed);
                let unreadable = |e| format!("secret unreadable: {e}");
                let current = open(&endpoint.secret).await.map_err(unreadable)?;
                let previous = match &endpoint.previous_secret {
                    Some(sealed) => Some(open(sealed).await.map_err(unreadable)?),
                    None => None,
                };
                let opened = OpenedSecrets {
                    version: endpoint.version,
                    current,
                    previous,
                };
                self.opened
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(endpoint.id.clone(), opened.clone());
                opened
            }
        };
        let previous = opened.previous.filter(|_| endpoint.previous_signs(now));
        Ok(std::iter::once(opened.current).chain(previous).collect())
    }

    /// Delivers `event` to `endpoint`, signed at `now`. A 2xx answer is success; anything
    /// else (another status, a redirect, no answer in time, a refused address) is a
    /// failure to retry.
    pub async fn deliver(
        &self,
        sealer: &Sealer,
        endpoint: &WebhookEndpoint,
        event: &Event,
        now: Millis,
    ) -> Result<(), String> {
        // The URL's rules again, as it may have been stored under other ones (an earlier
        // version). Loopback is left to the connector here, which checks literals and
        // every resolved address against the setting as it is now.
        parse_url(&endpoint.url, true).map_err(|why| format!("url {why}"))?;
        let keys = self.keys(sealer, endpoint, now).await?;
        let mut request = http::Request::post(&endpoint.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "session-service-webhooks/1");
        for (name, value) in signing::headers(&keys, &event.id, now / 1000, &event.payload) {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(event.payload.clone())))
            .map_err(|e| format!("request not built: {e}"))?;
        let answer = tokio::time::timeout(TIMEOUT, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("not delivered: {}", causes(&e)))?;
            let status = response.status();
            // Read (a bounded part of) the answer so the connection can be reused.
            let _ = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await;
            Ok::<_, String>(status)
        })
        .await
        .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))??;
        if answer.is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", answer.as_u16()))
        }
    }
}

/// An error and its causes, one line: the client's own message ("client error
/// (Connect)") says nothing of why, such as a refused address. Never holds the URL.
fn causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
