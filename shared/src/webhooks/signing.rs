//! Standard Webhooks signatures, as Svix makes them and `svix`/`verifyWebhook` check
//! them: `svix-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed
//! with the bytes behind a `whsec_<base64>` secret. Several signatures (a secret and the
//! one before its rotation) are separated by spaces.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const SECRET_PREFIX: &str = "whsec_";

/// A new secret: its `whsec_…` form (what the receiver is given) and its key bytes.
pub fn new_secret() -> (String, Vec<u8>) {
    let key = crate::ids::random_bytes::<32>().to_vec();
    (format_secret(&key), key)
}

/// The `whsec_…` form of key bytes.
pub fn format_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// One `v1,` signature of a delivery.
pub fn signature(key: &[u8], msg_id: &str, timestamp_secs: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(msg_id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp_secs.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

/// The three headers of a delivery, signed with every key in `keys`.
pub fn headers(
    keys: &[Vec<u8>],
    msg_id: &str,
    timestamp_secs: i64,
    body: &str,
) -> [(&'static str, String); 3] {
    let signatures: Vec<String> = keys
        .iter()
        .map(|k| signature(k, msg_id, timestamp_secs, body))
        .collect();
    [
        ("svix-id", msg_id.to_string()),
        ("svix-timestamp", timestamp_secs.to_string()),
        ("svix-signature", signatures.join(" ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (and Svix's libraries' tests).
    #[test]
    fn signs_as_the_standard_webhooks_example() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_round_trip_through_their_whsec_form() {
        let (text, key) = new_secret();
        assert!(text.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&text[6..]).unwrap(), key);
    }
}
