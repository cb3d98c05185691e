//! The `GET /v1/environment` document clerk-js loads first. This service signs users in
//! only with tickets made by the Backend API: no sign-up, passwords, social logins or
//! organizations, and the document says so (first factor `ticket`, everything else off).
//! It depends only on the configuration, so it is rendered once, at start-up.

use crate::config::Config;

const TEMPLATE: &str = include_str!("environment.json");

/// The document with this instance's name, URL and type.
pub fn document(config: &Config) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    TEMPLATE
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
}
