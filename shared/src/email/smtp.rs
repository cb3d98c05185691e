//! Delivery over SMTP (lettre's async transport on tokio, TLS by rustls with aws-lc-rs).

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::templates::Rendered;
use super::DeliveryError;
use crate::config::{ConfigError, SmtpUrl};

/// How long one delivery may take: connecting, TLS, each command.
const TIMEOUT: Duration = Duration::from_secs(10);

pub(super) type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The transport `url` names, as lettre reads it (`AsyncSmtpTransport::from_url`):
/// `smtp://` plain, `smtp://…?tls=required` STARTTLS or nothing, `smtp://…?tls=opportunistic`
/// STARTTLS when offered, `smtps://` TLS from the first byte. Nothing is opened yet: each
/// delivery connects (no pool).
pub(super) fn transport(url: &SmtpUrl) -> Result<Transport, ConfigError> {
    let builder = Transport::from_url(url.expose()).map_err(|err| ConfigError::Invalid {
        name: "SMTP_URL",
        // lettre's errors name the scheme, the `tls` mode or a TLS failure, never the URL.
        reason: err.to_string(),
    })?;
    if url.has_credentials() && !url.requires_tls() {
        tracing::warn!(
            "SMTP_URL has a password but does not require TLS: use smtps:// or ?tls=required, \
             or the password may cross the network in clear"
        );
    }
    Ok(builder.timeout(Some(TIMEOUT)).build())
}

/// Sends `rendered` to `to` as multipart/alternative (text, then HTML).
pub(super) async fn send(
    transport: &Transport,
    from: &Mailbox,
    to: &str,
    rendered: Rendered,
) -> Result<(), DeliveryError> {
    let to: Mailbox = to
        .parse()
        .map_err(|_| DeliveryError::Failed("the recipient is not a valid address".into()))?;
    let message_id = format!("<{}@{}>", crate::ids::new_id("msg"), from.email.domain());
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(rendered.subject)
        .message_id(Some(message_id))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
        .map_err(|err| DeliveryError::Failed(format!("the message was not built: {err}")))?;
    transport
        .send(message)
        .await
        .map(|_| ())
        // The server's answer (code and text) or the network's error, never the message.
        .map_err(|err| DeliveryError::Failed(format!("SMTP: {err}")))
}
