//! The tests' delivery: every message kept in memory, to read back.

use std::sync::{Arc, Mutex};

use super::templates::Rendered;

/// One message a capturing mailer "sent".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The messages a [`Mailer::capture`](super::Mailer::capture) mailer sent, oldest first.
/// Clones share them.
#[derive(Clone, Default)]
pub struct Captured {
    sent: Arc<Mutex<Vec<SentEmail>>>,
}

impl Captured {
    /// Every message so far, oldest first.
    pub fn sent(&self) -> Vec<SentEmail> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The messages to `to` (compared without regard to case), oldest first.
    pub fn sent_to(&self, to: &str) -> Vec<SentEmail> {
        self.sent()
            .into_iter()
            .filter(|m| m.to.eq_ignore_ascii_case(to))
            .collect()
    }

    /// The code of the last message to `to`: the six digits its text body carries.
    pub fn code(&self, to: &str) -> Option<String> {
        self.sent_to(to).last().and_then(|m| code_in(&m.text))
    }

    /// Forgets every message.
    pub fn clear(&self) {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub(super) fn keep(&self, to: &str, rendered: Rendered) {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(SentEmail {
                to: to.to_string(),
                subject: rendered.subject,
                text: rendered.text,
                html: rendered.html,
            });
    }
}

impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.sent.lock().map_or(0, |s| s.len());
        write!(f, "Captured({n} messages)")
    }
}

/// The six digits of a code's text body: the line that is exactly six digits, else the
/// first word of exactly six digits.
pub fn code_in(text: &str) -> Option<String> {
    let six = |s: &str| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit());
    text.lines()
        .map(str::trim)
        .find(|l| six(l))
        .or_else(|| text.split(|c: char| !c.is_ascii_digit()).find(|w| six(w)))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::{templates, CodeEmail, CodePurpose};

    #[test]
    fn code_reads_the_last_message_to_an_address() {
        let captured = Captured::default();
        assert_eq!(captured.code("ada@example.com"), None);
        for (to, code) in [
            ("ada@example.com", "111111"),
            ("bob@example.com", "222222"),
            ("Ada@Example.com", "012345"),
        ] {
            let email = CodeEmail {
                purpose: CodePurpose::SignIn,
                to,
                code,
                application_name: "App 999999",
            };
            captured.keep(to, templates::render(&email));
        }
        assert_eq!(captured.code("ada@example.com").as_deref(), Some("012345"));
        assert_eq!(captured.code("bob@example.com").as_deref(), Some("222222"));
        assert_eq!(captured.sent().len(), 3);
        assert_eq!(captured.sent_to("ADA@example.com").len(), 2);
        assert!(!format!("{captured:?}").contains("012345"));
        captured.clear();
        assert!(captured.sent().is_empty());
    }

    #[test]
    fn code_in_finds_six_digits_alone() {
        assert_eq!(
            code_in("Your code is 654321, valid 10 minutes").as_deref(),
            Some("654321")
        );
        assert_eq!(code_in("1234567 is too long; 12345 too short"), None);
    }
}
