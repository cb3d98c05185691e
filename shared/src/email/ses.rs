//! Delivery through Amazon SES (`SendEmail` of the v2 API: the IAM action `ses:SendEmail`).
//! The endpoint, region and credentials come from the AWS environment, as for DynamoDB
//! (`AWS_ENDPOINT_URL_SESV2` points it elsewhere, as the tests do at moto).

use std::time::Duration;

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use base64::Engine;
use lettre::message::Mailbox;

use super::templates::Rendered;
use super::DeliveryError;

/// A client with short timeouts: a code is sent while a person waits.
pub(super) async fn client() -> aws_sdk_sesv2::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await;
    aws_sdk_sesv2::Client::new(&sdk)
}

/// The sender as SES takes it: a display name that is not ASCII in RFC 2047's encoded
/// form, as SES requires.
pub(super) fn sender(from: &Mailbox) -> String {
    match &from.name {
        Some(name) if !name.is_ascii() => format!(
            "=?UTF-8?B?{}?= <{}>",
            base64::engine::general_purpose::STANDARD.encode(name),
            from.email
        ),
        _ => from.to_string(),
    }
}

fn utf8(data: String) -> Result<Content, DeliveryError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|err| DeliveryError::Failed(format!("the message was not built: {err}")))
}

/// Sends `rendered` to `to`: SES builds the multipart/alternative of the text and HTML.
pub(super) async fn send(
    client: &aws_sdk_sesv2::Client,
    from: &Mailbox,
    to: &str,
    rendered: Rendered,
) -> Result<(), DeliveryError> {
    let to: lettre::Address = to
        .parse()
        .map_err(|_| DeliveryError::Failed("the recipient is not a valid address".into()))?;
    let message = Message::builder()
        .subject(utf8(rendered.subject)?)
        .body(
            Body::builder()
                .text(utf8(rendered.text)?)
                .html(utf8(rendered.html)?)
                .build(),
        )
        .build();
    client
        .send_email()
        .from_email_address(sender(from))
        .destination(Destination::builder().to_addresses(to.to_string()).build())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map(|_| ())
        // SES's error code and message (a sender not verified, a throttled account), never
        // the request.
        .map_err(|err| {
            DeliveryError::Failed(format!(
                "SES: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_name_outside_ascii_is_encoded() {
        let plain: Mailbox = "My App <no-reply@example.com>".parse().unwrap();
        assert_eq!(sender(&plain), "My App <no-reply@example.com>");
        let accented: Mailbox = "Café <no-reply@example.com>".parse().unwrap();
        assert_eq!(
            sender(&accented),
            "=?UTF-8?B?Q2Fmw6k=?= <no-reply@example.com>"
        );
    }
}
