//! The emails that carry one-time codes: a subject, a plain-text body and an HTML body for
//! each [`CodePurpose`], naming the application, the code and how long it lasts. Sent as
//! multipart/alternative (SMTP) or as SES's text and HTML parts.

use super::{CodeEmail, CodePurpose};
use crate::domain::one_time_code::CODE_LIFETIME_MS;

/// One code's email, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Never printed: every part carries the code.
impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rendered([redacted])")
    }
}

/// How long a code lasts, in minutes, as the emails say it.
pub fn lifetime_minutes() -> i64 {
    CODE_LIFETIME_MS / 60_000
}

/// What a purpose's code is called ("sign-in code"): in subjects, bodies and the
/// development console's line.
pub fn code_name(purpose: CodePurpose) -> &'static str {
    match purpose {
        CodePurpose::VerifyEmailAddress => "verification code",
        CodePurpose::SignIn => "sign-in code",
        CodePurpose::ResetPassword => "password reset code",
    }
}

/// What the code does, completing "Enter it to …".
fn action(purpose: CodePurpose) -> &'static str {
    match purpose {
        CodePurpose::VerifyEmailAddress => "verify your email address",
        CodePurpose::SignIn => "sign in",
        CodePurpose::ResetPassword => "reset your password",
    }
}

/// What to do with an email one did not ask for.
fn unrequested(purpose: CodePurpose) -> &'static str {
    match purpose {
        CodePurpose::VerifyEmailAddress => {
            "If you did not ask for this code, you can ignore this email: the address is not verified without it."
        }
        CodePurpose::SignIn => {
            "If you did not try to sign in, you can ignore this email: no one can sign in without the code."
        }
        CodePurpose::ResetPassword => {
            "If you did not ask to reset your password, you can ignore this email: your password stays as it is."
        }
    }
}

/// The application's name for a header or a line of text: control characters (a line
/// break would start a header of its own) become spaces.
pub fn one_line(name: &str) -> String {
    let line: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.trim().to_string()
}

/// `text` escaped for HTML content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The subject, the text and the HTML of `email`.
pub fn render(email: &CodeEmail<'_>) -> Rendered {
    let app = one_line(email.application_name);
    let code = one_line(email.code);
    let name = code_name(email.purpose);
    let action = action(email.purpose);
    let unrequested = unrequested(email.purpose);
    let minutes = lifetime_minutes();

    let subject = format!("{code} is your {app} {name}");
    let text = format!(
        "Your {app} {name} is:\n\
         \n\
         {code}\n\
         \n\
         Enter it to {action}. It expires in {minutes} minutes and works once.\n\
         \n\
         {unrequested}\n"
    );

    let app_html = escape_html(&app);
    let code_html = escape_html(&code);
    let html = format!(
        "<!DOCTYPE html>\n\
         <html>\n\
         <head><meta charset=\"utf-8\"><title>{app_html} {name}</title></head>\n\
         <body style=\"margin:0;padding:24px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2328;\">\n\
         <p style=\"font-size:16px;margin:0 0 16px;\">Your {app_html} {name} is:</p>\n\
         <p style=\"font-size:32px;font-weight:bold;letter-spacing:6px;margin:0 0 16px;font-family:Menlo,Consolas,monospace;\">{code_html}</p>\n\
         <p style=\"font-size:16px;margin:0 0 16px;\">Enter it to {action}. It expires in {minutes} minutes and works once.</p>\n\
         <p style=\"font-size:14px;color:#59636e;margin:0;\">{unrequested}</p>\n\
         </body>\n\
         </html>\n"
    );
    Rendered {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(purpose: CodePurpose, app: &'static str) -> CodeEmail<'static> {
        CodeEmail {
            purpose,
            to: "ada@example.com",
            code: "123456",
            application_name: app,
        }
    }

    #[test]
    fn each_purpose_names_the_application_the_code_and_its_lifetime() {
        for (purpose, words) in [
            (CodePurpose::VerifyEmailAddress, "verify your email address"),
            (CodePurpose::SignIn, "sign in"),
            (CodePurpose::ResetPassword, "reset your password"),
        ] {
            let r = render(&email(purpose, "My App"));
            assert_eq!(
                r.subject,
                format!("123456 is your My App {}", code_name(purpose))
            );
            for body in [&r.text, &r.html] {
                assert!(body.contains("123456"), "{purpose:?}");
                assert!(body.contains("My App"), "{purpose:?}");
                assert!(body.contains(words), "{purpose:?}");
                assert!(body.contains("expires in 10 minutes"), "{purpose:?}");
            }
            // The code stands on a line of its own in the text (what `Captured::code` reads).
            assert!(r.text.lines().any(|l| l == "123456"));
        }
        assert_ne!(
            render(&email(CodePurpose::SignIn, "A")).text,
            render(&email(CodePurpose::ResetPassword, "A")).text
        );
    }

    #[test]
    fn the_application_name_is_escaped_in_html_and_kept_on_one_line() {
        let r = render(&email(
            CodePurpose::SignIn,
            "<script>alert('x')</script> & \"Co\"\r\nBcc: eve@example.com",
        ));
        assert!(!r.html.contains("<script>"));
        assert!(r
            .html
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;"));
        // The plain text shows it as it is, but never breaks a header.
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
        assert!(r.subject.contains("<script>alert('x')</script>"));
    }

    #[test]
    fn rendered_debug_hides_the_code() {
        let r = render(&email(CodePurpose::SignIn, "My App"));
        assert!(!format!("{r:?}").contains("123456"));
    }
}
