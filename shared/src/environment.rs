//! The `GET /v1/environment` document clerk-js loads first. This service signs users in
//! only with tickets made by the Backend API: no sign-up, passwords, social logins or
//! organizations, and the document says so (first factor `ticket`, everything else off).
//! It depends only on the configuration, so it is rendered once, at start-up.

use crate::config::Config;

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
        Ok(document) => document.to_string(),
        Err(_) => filled,
    }
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
