//! The `GET /v1/environment` document clerk-js loads first: what the instance offers, so
//! that Clerk's components render the right forms. Email address and password sign-up
//! and sign-in, email codes and tickets, each as configured (`auth_settings`); no phone
//! numbers, social logins or organizations. It depends only on the configuration, so it
//! is rendered once, at start-up.

use serde_json::{json, Value};

use crate::auth_settings::SignUpMode;
use crate::config::{Config, EmailDelivery};

const TEMPLATE: &str = include_str!("environment.json");

/// The document with this instance's name, URL and type, compact (the file is laid out
/// for reading; the wire needs no whitespace).
pub fn document(config: &Config) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let filled = TEMPLATE
        .replace(
            "\"{{APPLICATION_NAME}}\"",
            &quoted(&config.application_name),
        )
        .replace(
            "\"{{FRONTEND_API_URL}}\"",
            &quoted(&config.frontend_api_url),
        )
        .replace(
            "\"{{INSTANCE_TYPE}}\"",
            &quoted(config.instance_type.as_str()),
        )
        .replace(
            "\"{{SINGLE_SESSION_MODE}}\"",
            if config.sessions_per_client.single() {
                "true"
            } else {
                "false"
            },
        );
    // The template is ours and tested to parse; were it not JSON, serving it as written
    // beats failing start-up.
    match serde_json::from_str::<serde_json::Value>(&filled) {
        Ok(mut document) => {
            offer(&mut document, config);
            document.to_string()
        }
        Err(_) => filled,
    }
}

/// One of `user_settings.attributes`.
fn attribute(
    enabled: bool,
    required: bool,
    first_factors: &[&str],
    verifications: &[&str],
    verify_at_sign_up: bool,
) -> Value {
    json!({
        "enabled": enabled,
        "required": enabled && required,
        "used_for_first_factor": enabled && !first_factors.is_empty(),
        "first_factors": if enabled { first_factors } else { &[] },
        "used_for_second_factor": false,
        "second_factors": [],
        "verifications": if enabled { verifications } else { &[] },
        "verify_at_sign_up": enabled && verify_at_sign_up,
        "immutable": false,
    })
}

/// Writes what sign-up and sign-in offer into the document (`auth_config` and
/// `user_settings`, the two places clerk-js reads them from).
fn offer(doc: &mut Value, config: &Config) {
    let auth = &config.auth;
    let req = &auth.requirements;
    // Codes only where they can be delivered.
    let codes = auth.email_code && config.email.delivery != EmailDelivery::None;
    let email_factors: &[&str] = if codes { &["email_code"] } else { &[] };
    let on = |b: bool| if b { "on" } else { "off" };
    let required = |b: bool| if b { "required" } else { "on" };

    let mut first_factors = vec!["ticket"];
    if auth.password {
        first_factors.push("password");
    }
    if codes {
        first_factors.extend(["email_code", "reset_password_email_code"]);
    }
    let mut identifiers = vec!["email_address"];
    if auth.username {
        identifiers.push("username");
    }
    let mut requirements = vec!["email_address"];
    if req.username {
        requirements.push("username");
    }
    let ac = &mut doc["auth_config"];
    ac["email_address"] = json!("required");
    ac["password"] = json!(if auth.password { "required" } else { "off" });
    ac["username"] = json!(if auth.username {
        required(req.username)
    } else {
        "off"
    });
    ac["first_name"] = json!(if req.names { "required" } else { on(true) });
    ac["last_name"] = ac["first_name"].clone();
    ac["identification_strategies"] = json!(identifiers);
    ac["identification_requirements"] = json!([requirements]);
    ac["first_factors"] = json!(first_factors);
    ac["email_address_verification_strategies"] = json!(email_factors);

    let us = &mut doc["user_settings"];
    let attrs = &mut us["attributes"];
    attrs["email_address"] = attribute(true, true, email_factors, email_factors, req.verify_email);
    attrs["password"] = attribute(auth.password, true, &[], &[], false);
    attrs["username"] = attribute(auth.username, req.username, &[], &[], false);
    attrs["first_name"] = attribute(true, req.names, &[], &[], false);
    attrs["last_name"] = attribute(true, req.names, &[], &[], false);
    // An address to verify and no way to send its code: sign-ups are closed in effect.
    let open = auth.sign_up == SignUpMode::Public && (codes || !req.verify_email);
    us["sign_up"]["mode"] = json!(if open { "public" } else { "restricted" });
    // What `<SignIn/>` asks for after the identifier: the password where there is one
    // (codes then stay one click away), else the email code.
    doc["display_config"]["preferred_sign_in_strategy"] =
        json!(if auth.password { "password" } else { "otp" });
    let rules = &req.password_rules;
    let ps = &mut doc["user_settings"]["password_settings"];
    ps["min_length"] = json!(rules.min_length);
    ps["max_length"] = json!(rules.max_length);
    ps["min_zxcvbn_strength"] = json!(rules.min_strength);
    ps["show_zxcvbn"] = json!(rules.min_strength > 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_compact_json_with_the_instance_filled_in() {
        let config = Config::from_lookup(|k| {
            (k == "FRONTEND_API_URL").then(|| "https://clerk.example.com".to_string())
        })
        .expect("config");
        let text = document(&config);
        assert!(!text.contains('\n') && !text.contains(": "), "not compact");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            doc["display_config"]["instance_environment_type"],
            "production"
        );
        assert_eq!(doc["auth_config"]["single_session_mode"], false);
    }

    #[test]
    fn sign_up_and_sign_in_are_offered_as_configured() {
        let doc = |extra: &[(&str, &str)]| -> serde_json::Value {
            let mut env: std::collections::HashMap<&str, &str> =
                [("FRONTEND_API_URL", "https://clerk.example.com")].into();
            env.extend(extra.iter().copied());
            let config =
                Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("config");
            serde_json::from_str(&document(&config)).expect("JSON")
        };
        // A development instance delivers codes on its console: every factor is offered.
        let dev = doc(&[("INSTANCE_TYPE", "development")]);
        assert_eq!(
            dev["auth_config"]["first_factors"],
            json!([
                "ticket",
                "password",
                "email_code",
                "reset_password_email_code"
            ])
        );
        let attrs = &dev["user_settings"]["attributes"];
        assert_eq!(
            attrs["email_address"]["first_factors"],
            json!(["email_code"])
        );
        assert_eq!(attrs["email_address"]["verify_at_sign_up"], true);
        assert_eq!(attrs["password"]["required"], true);
        assert_eq!(attrs["username"]["enabled"], false);
        assert_eq!(dev["user_settings"]["sign_up"]["mode"], "public");
        assert_eq!(
            dev["display_config"]["preferred_sign_in_strategy"],
            "password"
        );
        // A production instance with no way to send mail offers no codes, and so no
        // sign-up (its address could not be verified).
        let prod = doc(&[]);
        assert_eq!(
            prod["auth_config"]["first_factors"],
            json!(["ticket", "password"])
        );
        assert_eq!(prod["user_settings"]["sign_up"]["mode"], "restricted");
        // Each turns off.
        let off = doc(&[
            ("INSTANCE_TYPE", "development"),
            ("SIGN_IN_PASSWORD", "false"),
            ("SIGN_IN_EMAIL_CODE", "false"),
            ("SIGN_UP_MODE", "restricted"),
            ("USERNAMES", "required"),
            ("PASSWORD_MIN_LENGTH", "12"),
        ]);
        assert_eq!(off["auth_config"]["first_factors"], json!(["ticket"]));
        assert_eq!(off["display_config"]["preferred_sign_in_strategy"], "otp");
        let attrs = &off["user_settings"]["attributes"];
        assert_eq!(attrs["password"]["enabled"], false);
        assert_eq!(attrs["username"]["required"], true);
        assert_eq!(off["user_settings"]["sign_up"]["mode"], "restricted");
        assert_eq!(off["user_settings"]["password_settings"]["min_length"], 12);
    }

    #[test]
    fn single_session_mode_is_reported() {
        let config = Config::from_lookup(|k| match k {
            "FRONTEND_API_URL" => Some("https://clerk.example.com".to_string()),
            "SESSION_MODE" => Some("single".to_string()),
            _ => None,
        })
        .expect("config");
        let doc: serde_json::Value = serde_json::from_str(&document(&config)).expect("JSON");
        assert_eq!(doc["auth_config"]["single_session_mode"], true);
    }
}
