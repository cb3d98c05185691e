//! The size limits on what callers store and what the service renders, in one place.
//! Each one bounds the memory and time a single request can cost (docs/security.md).
//!
//! A leaf: the checks answer plain values ([`Exceeded`]); the caller names the parameter
//! and answers the error (`ApiError::limit_exceeded`).

use serde::Serialize;
use serde_json::{Map, Value};

/// Per user and per kind of metadata (public, private, unsafe): Clerk's own limit.
pub const METADATA_MAX_BYTES: usize = 8 * 1024;

/// A template's claims document, as JSON. Twice what a token may carry once rendered:
/// room for fallbacks (`{{a || 'default'}}`) that render shorter than they read.
pub const TEMPLATE_MAX_BYTES: usize = 2 * RENDERED_CLAIMS_MAX_BYTES;

/// Nesting depth of a template's claims (the claims object itself is depth 1).
pub const TEMPLATE_MAX_DEPTH: usize = 8;

/// A template token's claims (rendered, with the default claims), as JSON. Clerk's guidance
/// is that a token must fit in a browser cookie (4 KB, so Clerk keeps custom session-token
/// claims near 1.2 KB). 2.5 KB of claims is ~3.4 KB in base64url; with the header and the
/// largest signature (RS512, 342 characters) the JWT stays under 3.9 KB.
pub const RENDERED_CLAIMS_MAX_BYTES: usize = 2560;

/// Request headers, all names and values together. API Gateway's HTTP API refuses more
/// than 10 KB of headers itself; the local server allows a little more, so its answer is
/// the service's own `request_header_fields_too_large`.
pub const HEADERS_MAX_BYTES: usize = 16 * 1024;

/// The length of `value` as compact JSON, without building the string.
pub fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        // A value that does not serialize is never stored; count it as too large.
        Err(_) => usize::MAX,
    }
}

/// How deep `value` nests: a scalar is 0, `{}` or `[]` is 1.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A value over one of the limits: what it measured, and the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    /// `len` bytes of compact JSON, over `max`.
    Bytes { len: usize, max: usize },
    /// Nested `depth` levels deep, over `max`.
    Depth { depth: usize, max: usize },
}

/// One kind of user metadata: at most [`METADATA_MAX_BYTES`].
pub fn check_metadata(metadata: &Map<String, Value>) -> Result<(), Exceeded> {
    let len = json_len(metadata);
    if len > METADATA_MAX_BYTES {
        return Err(Exceeded::Bytes {
            len,
            max: METADATA_MAX_BYTES,
        });
    }
    Ok(())
}

/// A template's claims: at most [`TEMPLATE_MAX_BYTES`] and [`TEMPLATE_MAX_DEPTH`] deep.
pub fn check_template_claims(claims: &Map<String, Value>) -> Result<(), Exceeded> {
    let len = json_len(claims);
    if len > TEMPLATE_MAX_BYTES {
        return Err(Exceeded::Bytes {
            len,
            max: TEMPLATE_MAX_BYTES,
        });
    }
    let deep = 1 + claims.values().map(depth).max().unwrap_or(0);
    if deep > TEMPLATE_MAX_DEPTH {
        return Err(Exceeded::Depth {
            depth: deep,
            max: TEMPLATE_MAX_DEPTH,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lengths_and_depths() {
        assert_eq!(json_len(&json!({"a": [1, "x"]})), r#"{"a":[1,"x"]}"#.len());
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({"a": [{"b": 1}]})), 3);
    }

    #[test]
    fn metadata_at_the_limit_passes_and_one_byte_more_fails() {
        let fill = |n: usize| {
            let mut m = Map::new();
            // {"k":"…"} is 8 bytes around the value.
            m.insert("k".into(), json!("x".repeat(n - 8)));
            m
        };
        assert!(check_metadata(&fill(METADATA_MAX_BYTES)).is_ok());
        assert_eq!(
            check_metadata(&fill(METADATA_MAX_BYTES + 1)),
            Err(Exceeded::Bytes {
                len: METADATA_MAX_BYTES + 1,
                max: METADATA_MAX_BYTES
            })
        );
    }

    #[test]
    fn template_claims_too_deep() {
        let mut claims = Map::new();
        let mut v = json!(1);
        for _ in 0..TEMPLATE_MAX_DEPTH {
            v = json!({ "a": v });
        }
        claims.insert("a".into(), v);
        assert_eq!(
            check_template_claims(&claims),
            Err(Exceeded::Depth {
                depth: TEMPLATE_MAX_DEPTH + 1,
                max: TEMPLATE_MAX_DEPTH
            })
        );
    }
}
