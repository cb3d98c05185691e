//! Email delivery of one-time codes (sign-up verification, sign-in code, password reset):
//! over SMTP, through Amazon SES, printed on a development instance's console, or nowhere
//! when a production instance has none configured (docs/email.md).
//!
//! A code is never logged: [`CodeEmail`]'s `Debug` leaves it out, [`DeliveryError`]s carry
//! only the transport's answer, and the SMTP URL's `Debug` hides its password. The one
//! place a code is printed is the development console, on purpose: there it is how the
//! developer gets it, and configuration refuses that delivery on a production instance.

mod capture;
mod ses;
mod smtp;
pub mod templates;

pub use capture::{code_in, Captured, SentEmail};

use crate::config::{ConfigError, EmailDelivery, EmailSettings};
use lettre::message::Mailbox;

/// What a code is for; picks the template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePurpose {
    VerifyEmailAddress,
    SignIn,
    ResetPassword,
}

/// One code to send. `Debug` does not print the code.
pub struct CodeEmail<'a> {
    pub purpose: CodePurpose,
    pub to: &'a str,
    pub code: &'a str,
    pub application_name: &'a str,
}

impl std::fmt::Debug for CodeEmail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeEmail")
            .field("purpose", &self.purpose)
            .field("to", &self.to)
            .field("code", &"[redacted]")
            .field("application_name", &self.application_name)
            .finish()
    }
}

/// Why a code was not sent. The message never contains the code.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No delivery configured (a production instance without SMTP or SES).
    #[error("email delivery is not configured")]
    NotConfigured,
    #[error("email delivery failed: {0}")]
    Failed(String),
}

/// Sends code emails the configured way. Built once per process; the state holds it in
/// an `Arc`.
pub struct Mailer {
    delivery: Delivery,
}

enum Delivery {
    Smtp {
        transport: smtp::Transport,
        from: Mailbox,
    },
    Ses {
        client: aws_sdk_sesv2::Client,
        from: Mailbox,
    },
    Console,
    Disabled,
    Capture(Captured),
}

impl Mailer {
    /// The mailer `cfg` describes. Opens no connection: SMTP connects per delivery, SES's
    /// client loads the AWS configuration (region, credentials provider) here.
    pub async fn from_config(cfg: &EmailSettings) -> Result<Self, ConfigError> {
        let delivery = match &cfg.delivery {
            EmailDelivery::Smtp(url) => Delivery::Smtp {
                transport: smtp::transport(url)?,
                from: cfg.from.clone(),
            },
            EmailDelivery::Ses => Delivery::Ses {
                client: ses::client().await,
                from: cfg.from.clone(),
            },
            EmailDelivery::Console => {
                tracing::info!(
                    "EMAIL_DELIVERY=console: one-time codes are printed on standard error \
                     (a development instance)"
                );
                Delivery::Console
            }
            EmailDelivery::None => Delivery::Disabled,
        };
        Ok(Self { delivery })
    }

    /// A mailer that delivers nothing ([`Mailer::can_deliver`] is false): for processes
    /// that never send.
    pub fn disabled() -> Self {
        Self {
            delivery: Delivery::Disabled,
        }
    }

    /// For tests: a mailer that keeps every message in memory, and the handle to read them.
    pub fn capture() -> (Self, Captured) {
        let captured = Captured::default();
        let mailer = Self {
            delivery: Delivery::Capture(captured.clone()),
        };
        (mailer, captured)
    }

    /// Whether codes can be delivered at all (false when nothing is configured).
    pub fn can_deliver(&self) -> bool {
        !matches!(self.delivery, Delivery::Disabled)
    }

    /// The delivery's name, for logs and metrics: `smtp`, `ses`, `console`, `none`,
    /// `capture`.
    pub fn kind(&self) -> &'static str {
        match self.delivery {
            Delivery::Smtp { .. } => "smtp",
            Delivery::Ses { .. } => "ses",
            Delivery::Console => "console",
            Delivery::Disabled => "none",
            Delivery::Capture(_) => "capture",
        }
    }

    /// Sends `email`'s code to its address. A failure is logged here (the delivery and
    /// the transport's answer, never the code or the address) and answered.
    pub async fn send_code(&self, email: &CodeEmail<'_>) -> Result<(), DeliveryError> {
        let rendered = templates::render(email);
        let result = match &self.delivery {
            Delivery::Smtp { transport, from } => {
                smtp::send(transport, from, email.to, rendered).await
            }
            Delivery::Ses { client, from } => ses::send(client, from, email.to, rendered).await,
            Delivery::Console => {
                // Deliberately printed: a local developer's only way to get the code.
                eprintln!(
                    "email to {} ({} for {}): {}",
                    templates::one_line(email.to),
                    templates::code_name(email.purpose),
                    templates::one_line(email.application_name),
                    templates::one_line(email.code),
                );
                Ok(())
            }
            Delivery::Disabled => Err(DeliveryError::NotConfigured),
            Delivery::Capture(captured) => {
                captured.keep(email.to, rendered);
                Ok(())
            }
        };
        if let Err(DeliveryError::Failed(reason)) = &result {
            tracing::warn!(
                delivery = self.kind(),
                purpose = ?email.purpose,
                error = %reason,
                "code email not delivered"
            );
        }
        result
    }
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({})", self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(code: &'static str) -> CodeEmail<'static> {
        CodeEmail {
            purpose: CodePurpose::ResetPassword,
            to: "ada@example.com",
            code,
            application_name: "My App",
        }
    }

    #[test]
    fn code_email_debug_hides_the_code() {
        let printed = format!("{:?}", email("918273"));
        assert!(!printed.contains("918273"), "{printed}");
        assert!(printed.contains("ada@example.com") && printed.contains("ResetPassword"));
    }

    #[tokio::test]
    async fn disabled_answers_not_configured_and_capture_keeps_the_message() {
        let disabled = Mailer::disabled();
        assert!(!disabled.can_deliver());
        assert!(matches!(
            disabled.send_code(&email("918273")).await,
            Err(DeliveryError::NotConfigured)
        ));
        let (mailer, captured) = Mailer::capture();
        assert!(mailer.can_deliver());
        mailer.send_code(&email("918273")).await.unwrap();
        let sent = captured.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "ada@example.com");
        assert!(sent[0].subject.contains("password reset code"));
        assert_eq!(captured.code("ada@example.com").as_deref(), Some("918273"));
        assert_eq!(format!("{mailer:?}"), "Mailer(capture)");
    }

    #[tokio::test]
    async fn from_config_picks_the_delivery() {
        let settings = |pairs: &[(&str, &str)]| {
            let mut all = vec![("FRONTEND_API_URL", "https://clerk.example.com")];
            all.extend_from_slice(pairs);
            let map: std::collections::HashMap<_, _> = all.into_iter().collect();
            crate::config::Config::from_lookup(|k| map.get(k).map(|v| v.to_string()))
                .unwrap()
                .email
        };
        let kind = |pairs: &[(&str, &str)]| {
            let s = settings(pairs);
            async move { Mailer::from_config(&s).await.unwrap().kind() }
        };
        assert_eq!(kind(&[]).await, "none");
        assert_eq!(kind(&[("INSTANCE_TYPE", "development")]).await, "console");
        let smtp = [
            ("SMTP_URL", "smtps://user:p%40ss@smtp.example.com"),
            ("EMAIL_FROM", "My App <no-reply@example.com>"),
        ];
        assert_eq!(kind(&smtp).await, "smtp");
        let plain = [
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
            ("EMAIL_FROM", "no-reply@example.com"),
        ];
        assert_eq!(kind(&plain).await, "smtp");
        let starttls = [
            ("SMTP_URL", "smtp://smtp.example.com:587?tls=required"),
            ("EMAIL_FROM", "no-reply@example.com"),
        ];
        assert_eq!(kind(&starttls).await, "smtp");
    }
}
