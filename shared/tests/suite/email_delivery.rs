//! One-time codes by email, through real deliveries: SMTP to the test command's SMTP sink
//! (`scripts/smtp_sink.py`: aiosmtpd, read back over HTTP) and Amazon SES's `SendEmail`
//! on moto (read back through `scripts/moto_server.py`'s `GET /_test/ses/messages`).
//! Without those servers the tests fail when `REQUIRE_DYNAMODB` (set by `scripts/test.sh`)
//! or `CI` is set, and otherwise say that they were skipped.

use serde_json::Value;
use shared::email::{CodeEmail, CodePurpose, DeliveryError, Mailer};
use testkit::app::test_config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What each purpose's subject calls its code.
const PURPOSES: [(CodePurpose, &str, &str); 3] = [
    (
        CodePurpose::VerifyEmailAddress,
        "310254",
        "verification code",
    ),
    (CodePurpose::SignIn, "478112", "sign-in code"),
    (CodePurpose::ResetPassword, "052966", "password reset code"),
];

/// An application name that needs escaping in HTML and encoding in a header.
const APP: &str = "Café <Ada> & Co";
const APP_HTML: &str = "Café &lt;Ada&gt; &amp; Co";

/// `name`, or (when the test command did not set it) a skip, or a failure where the test
/// command's servers are required.
fn required_env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("REQUIRE_DYNAMODB").is_some() || std::env::var_os("CI").is_some() => {
            panic!("{name} is not set: run the tests with `bash scripts/test.sh`")
        }
        _ => {
            eprintln!(
                "SKIPPED: {name} is not set (run `bash scripts/test.sh` to start its server)"
            );
            None
        }
    }
}

/// A recipient no other test writes to.
fn fresh_address(name: &str) -> String {
    format!("{}@example.com", shared::ids::new_id(name))
}

/// `GET`s `url` (`http://host:port/path?query`) and reads its JSON answer (HTTP/1.0: the
/// server closes the connection after an answer that is never chunked).
async fn get_json(url: &str) -> Value {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8(answer).expect("utf-8");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(
        head.starts_with("HTTP/1.") && head[9..].starts_with("200"),
        "{head}"
    );
    serde_json::from_str(body).expect("JSON")
}

fn encoded(address: &str) -> String {
    form_urlencoded::byte_serialize(address.as_bytes()).collect()
}

fn code_email<'a>(purpose: CodePurpose, to: &'a str, code: &'a str) -> CodeEmail<'a> {
    CodeEmail {
        purpose,
        to,
        code,
        application_name: APP,
    }
}

#[tokio::test]
async fn smtp_delivers_each_purpose_as_text_and_html() {
    let (Some(smtp_url), Some(sink)) = (
        required_env("SMTP_SINK_SMTP_URL"),
        required_env("SMTP_SINK_URL"),
    ) else {
        return;
    };
    // As an operator configures it: SMTP_URL alone picks SMTP.
    let settings = test_config(&[
        ("SMTP_URL", &smtp_url),
        ("EMAIL_FROM", "Ada's codes <codes@example.com>"),
    ])
    .email;
    let mailer = Mailer::from_config(&settings).await.expect("mailer");
    assert_eq!(mailer.kind(), "smtp");
    assert!(mailer.can_deliver());

    let to = fresh_address("ada");
    for (purpose, code, _) in PURPOSES {
        mailer
            .send_code(&code_email(purpose, &to, code))
            .await
            .expect("delivered");
    }

    let messages = get_json(&format!("{sink}/messages?to={}", encoded(&to))).await;
    let messages = messages.as_array().expect("an array");
    assert_eq!(messages.len(), 3, "{messages:#?}");
    for (m, (purpose, code, name)) in messages.iter().zip(PURPOSES) {
        assert_eq!(m["to"], serde_json::json!([to]), "{purpose:?}");
        assert_eq!(m["from"], "Ada's codes <codes@example.com>");
        // The subject crosses SMTP encoded (the name is not ASCII) and reads back as sent.
        assert_eq!(m["subject"], format!("{code} is your {APP} {name}"));
        let text = m["text"].as_str().expect("a text/plain part");
        assert!(text.lines().any(|l| l == code), "{text}");
        assert!(text.contains(APP), "{text}");
        assert!(text.contains("expires in 10 minutes"), "{text}");
        let html = m["html"].as_str().expect("a text/html part");
        assert!(html.contains(code), "{html}");
        assert!(html.contains(APP_HTML), "{html}");
        assert!(!html.contains("<Ada>"), "{html}");
        assert!(html.contains("expires in 10 minutes"), "{html}");
    }
}

#[tokio::test]
async fn a_failed_smtp_delivery_says_why_without_the_code() {
    // A port nothing listens on: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let settings = test_config(&[
        ("SMTP_URL", &format!("smtp://127.0.0.1:{port}")),
        ("EMAIL_FROM", "codes@example.com"),
    ])
    .email;
    let mailer = Mailer::from_config(&settings).await.expect("mailer");
    let err = mailer
        .send_code(&code_email(
            CodePurpose::SignIn,
            "ada@example.com",
            "771903",
        ))
        .await
        .expect_err("nothing listens");
    let DeliveryError::Failed(reason) = &err else {
        panic!("{err:?}");
    };
    assert!(reason.starts_with("SMTP: "), "{reason}");
    assert!(!err.to_string().contains("771903"), "{err}");
    assert!(!format!("{err:?}").contains("771903"), "{err:?}");

    // An address SMTP cannot take is refused before anything is sent.
    let err = mailer
        .send_code(&code_email(CodePurpose::SignIn, "not an address", "771903"))
        .await
        .expect_err("refused");
    assert!(!err.to_string().contains("771903"), "{err}");
}

#[tokio::test]
async fn ses_sends_from_a_verified_identity_on_moto() {
    let Some(endpoint) = required_env("AWS_ENDPOINT_URL_SESV2") else {
        return;
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let from = fresh_address("codes");
    // SES sends only from a verified identity (an address, or its whole domain).
    ses.create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("verify the sender on moto");

    let settings = test_config(&[
        ("EMAIL_DELIVERY", "ses"),
        ("EMAIL_FROM", &format!("My App <{from}>")),
    ])
    .email;
    let mailer = Mailer::from_config(&settings).await.expect("mailer");
    assert_eq!(mailer.kind(), "ses");
    let to = fresh_address("ada");
    for (purpose, code, _) in PURPOSES {
        mailer
            .send_code(&code_email(purpose, &to, code))
            .await
            .expect("sent");
    }

    let sent = get_json(&format!(
        "{endpoint}/_test/ses/messages?to={}",
        encoded(&to)
    ))
    .await;
    let sent = sent.as_array().expect("an array");
    assert_eq!(sent.len(), 3, "{sent:#?}");
    for (m, (purpose, code, name)) in sent.iter().zip(PURPOSES) {
        assert_eq!(m["source"], format!("My App <{from}>"), "{purpose:?}");
        assert_eq!(m["destinations"]["ToAddresses"], serde_json::json!([to]));
        assert_eq!(m["subject"], format!("{code} is your {APP} {name}"));
        // moto keeps the HTML part of a message that has one.
        let body = m["body"].as_str().expect("a body");
        assert!(body.contains(code), "{body}");
        assert!(body.contains(APP_HTML), "{body}");
        assert!(body.contains("expires in 10 minutes"), "{body}");
    }

    // A sender that is not verified is refused by SES; the error says so, not the code.
    let unverified = test_config(&[
        ("EMAIL_DELIVERY", "ses"),
        ("EMAIL_FROM", "nobody@unverified.example.net"),
    ])
    .email;
    let mailer = Mailer::from_config(&unverified).await.expect("mailer");
    let err = mailer
        .send_code(&code_email(CodePurpose::SignIn, &to, "640117"))
        .await
        .expect_err("an unverified sender");
    let DeliveryError::Failed(reason) = &err else {
        panic!("{err:?}");
    };
    assert!(reason.contains("not verified"), "{reason}");
    assert!(!reason.contains("640117"), "{reason}");
}

#[tokio::test]
async fn the_test_harness_captures_what_the_service_sends() {
    let app = testkit::app::TestApp::new().await;
    assert!(app.state.mailer.can_deliver());
    app.state
        .mailer
        .send_code(&code_email(
            CodePurpose::SignIn,
            "ada@example.com",
            "902114",
        ))
        .await
        .expect("captured");
    assert_eq!(app.mail.code("ada@example.com").as_deref(), Some("902114"));
    assert_eq!(
        app.mail.sent()[0].subject,
        format!("902114 is your {APP} sign-in code")
    );
}

/// A sign-up as a deployment runs it: the DynamoDB store, codes through SES (both on
/// moto); the code is read back from what SES was handed.
#[tokio::test]
async fn a_sign_up_on_dynamodb_gets_its_code_through_ses() {
    let Some(endpoint) = required_env("AWS_ENDPOINT_URL_SESV2") else {
        return;
    };
    let Some(store) = testkit::stores::dynamodb().await else {
        return;
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let from = fresh_address("codes");
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("verify the sender on moto");
    let config = test_config(&[("EMAIL_DELIVERY", "ses"), ("EMAIL_FROM", &from)]);
    let app = testkit::app::TestApp::delivering_email(config, store).await;
    let to = fresh_address("grace");
    let resp = app
        .send(
            testkit::app::Req::post("/v1/client/sign_ups")
                .native("")
                .form(&format!(
                    "email_address={}&password=plum-tractor-vinegar-42",
                    encoded(&to)
                )),
        )
        .await;
    let id = resp.ok()["response"]["id"].as_str().unwrap().to_string();
    let token = resp.header("authorization").unwrap().to_string();
    let step = |action: &str, body: &str| {
        testkit::app::Req::post(format!("/v1/client/sign_ups/{id}/{action}"))
            .native(&token)
            .form(body)
    };
    app.send(step("prepare_verification", "strategy=email_code"))
        .await
        .ok();
    let sent = get_json(&format!(
        "{endpoint}/_test/ses/messages?to={}",
        encoded(&to)
    ))
    .await;
    let sent = sent.as_array().expect("an array");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["source"], from);
    let body = sent[0]["body"].as_str().expect("a body");
    let code = shared::email::code_in(body).expect("a code in the message");
    let done = app
        .send(step(
            "attempt_verification",
            &format!("strategy=email_code&code={code}"),
        ))
        .await;
    assert_eq!(done.ok()["response"]["status"], "complete");
    let user = done.body["response"]["created_user_id"].as_str().unwrap();
    let stored = app.store.get_user(user).await.unwrap().expect("the user");
    assert_eq!(stored.email_addresses[0].email_address, to);
}
