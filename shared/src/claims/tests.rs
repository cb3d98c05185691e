//! The rendering table: each row is a claims document and what it renders to.

use serde_json::{json, Map, Value};

use super::{dig, Claims, Context};

struct Ctx(Value);

impl Context for Ctx {
    fn lookup(&self, path: &[String]) -> Option<Value> {
        let (first, rest) = path.split_first()?;
        dig(self.0.get(first)?, rest)
    }
}

fn ctx() -> Ctx {
    Ctx(json!({
        "user": {
            "id": "user_1", "first_name": "John", "last_name": null, "full_name": "John",
            "username": "johnny", "email_verified": true, "phone_number_verified": false,
            "two_factor_enabled": false, "created_at": 1700000000, "primary_email_address": "j@x.io",
            "public_metadata": {"plan": "pro", "seats": 3, "tags": ["a", "b"], "flags": {"beta": true},
                                "addresses": {"Home": "1 Main St"}, "off": false, "empty": "", "zero": 0},
            "unsafe_metadata": {},
        },
        "session": {"actor": null},
        "org": null,
    }))
}

fn render(claims: Value) -> Value {
    let parsed = Claims::parse(claims.as_object().expect("object")).expect("parses");
    Value::Object(parsed.render(&ctx()))
}

#[test]
fn rendering_table() {
    let cases: Vec<(Value, Value)> = vec![
        // Plain values pass through.
        (json!({"a": 1}), json!({"a": 1})),
        (json!({"a": "text"}), json!({"a": "text"})),
        (
            json!({"a": null, "b": true, "c": [1, "x"]}),
            json!({"a": null, "b": true, "c": [1, "x"]}),
        ),
        (json!({"a": ""}), json!({"a": ""})),
        (
            json!({"a": "}} not a shortcode"}),
            json!({"a": "}} not a shortcode"}),
        ),
        // A whole shortcode keeps its type.
        (json!({"a": "{{user.id}}"}), json!({"a": "user_1"})),
        (
            json!({"a": "{{user.created_at}}"}),
            json!({"a": 1700000000}),
        ),
        (json!({"a": "{{user.email_verified}}"}), json!({"a": true})),
        (
            json!({"a": "{{user.phone_number_verified}}"}),
            json!({"a": false}),
        ),
        (
            json!({"a": "{{user.public_metadata}}"}),
            json!({"a": ctx().0["user"]["public_metadata"]}),
        ),
        (
            json!({"a": "{{user.public_metadata.tags}}"}),
            json!({"a": ["a", "b"]}),
        ),
        (
            json!({"a": "{{user.public_metadata.seats}}"}),
            json!({"a": 3}),
        ),
        (json!({"a": "{{user.last_name}}"}), json!({"a": null})),
        // Metadata paths, missing values and unknown shortcodes.
        (
            json!({"a": "{{user.public_metadata.addresses.Home}}"}),
            json!({"a": "1 Main St"}),
        ),
        (
            json!({"a": "{{user.public_metadata.flags.beta}}"}),
            json!({"a": true}),
        ),
        (
            json!({"a": "{{user.public_metadata.nope.deeper}}"}),
            json!({"a": null}),
        ),
        (
            json!({"a": "{{user.public_metadata.tags.0}}"}),
            json!({"a": null}),
        ),
        (json!({"a": "{{user.i_dont_exist}}"}), json!({"a": null})),
        (json!({"a": "{{nothing.at_all}}"}), json!({"a": null})),
        (json!({"a": "{{org.id}}"}), json!({"a": null})),
        (json!({"a": "{{session.actor}}"}), json!({"a": null})),
        // Interpolation always gives a string; null prints as null.
        (
            json!({"a": "{{user.last_name}} {{user.first_name}}"}),
            json!({"a": "null John"}),
        ),
        (
            json!({"a": "Hi {{user.first_name}}!"}),
            json!({"a": "Hi John!"}),
        ),
        (
            json!({"a": "n={{user.public_metadata.seats}}"}),
            json!({"a": "n=3"}),
        ),
        (
            json!({"a": "v={{user.email_verified}}"}),
            json!({"a": "v=true"}),
        ),
        (
            json!({"a": "t={{user.public_metadata.tags}}"}),
            json!({"a": "t=[\"a\",\"b\"]"}),
        ),
        (
            json!({"a": "{{user.id}}{{user.username}}"}),
            json!({"a": "user_1johnny"}),
        ),
        (json!({"a": "x {{user.nope}}"}), json!({"a": "x null"})),
        // Whitespace inside the braces.
        (json!({"a": "{{ user.id }}"}), json!({"a": "user_1"})),
        (
            json!({"a": "{{   user.first_name||'x'   }}"}),
            json!({"a": "John"}),
        ),
        // Fallbacks: first operand neither null nor false, else the last.
        (
            json!({"a": "{{user.last_name || 'Anon'}}"}),
            json!({"a": "Anon"}),
        ),
        (
            json!({"a": "{{user.first_name || 'Anon'}}"}),
            json!({"a": "John"}),
        ),
        (
            json!({"a": "{{user.last_name || user.username || 'x'}}"}),
            json!({"a": "johnny"}),
        ),
        (
            json!({"a": "{{user.public_metadata.off || 'on'}}"}),
            json!({"a": "on"}),
        ),
        (
            json!({"a": "{{user.last_name || user.public_metadata.off}}"}),
            json!({"a": false}),
        ),
        (
            json!({"a": "{{user.last_name || user.nope}}"}),
            json!({"a": null}),
        ),
        (
            json!({"a": "{{user.public_metadata.empty || 'x'}}"}),
            json!({"a": ""}),
        ),
        (
            json!({"a": "{{user.public_metadata.zero || 5}}"}),
            json!({"a": 0}),
        ),
        (json!({"a": "{{user.last_name || 42}}"}), json!({"a": 42})),
        (
            json!({"a": "{{user.last_name || -1.5}}"}),
            json!({"a": -1.5}),
        ),
        (
            json!({"a": "{{user.last_name || true}}"}),
            json!({"a": true}),
        ),
        (
            json!({"a": "{{user.last_name || false}}"}),
            json!({"a": false}),
        ),
        (
            json!({"a": "Awesome {{user.last_name || 'user'}}"}),
            json!({"a": "Awesome user"}),
        ),
        (json!({"a": "{{'lit' || user.id}}"}), json!({"a": "lit"})),
        (json!({"a": "{{'a b || c'}}"}), json!({"a": "a b || c"})),
        // Nesting through objects and arrays; keys are never interpreted.
        (
            json!({"a": {"b": ["{{user.id}}", {"c": "{{user.public_metadata.plan}}"}]}}),
            json!({"a": {"b": ["user_1", {"c": "pro"}]}}),
        ),
        (
            json!({"{{user.id}}": "{{user.id}}"}),
            json!({"{{user.id}}": "user_1"}),
        ),
        (
            json!({"a": [["{{user.email_verified}}"]]}),
            json!({"a": [[true]]}),
        ),
        (
            json!({"https://hasura.io/jwt/claims": {"x-hasura-user-id": "{{user.id}}", "x-hasura-default-role": "user", "x-hasura-allowed-roles": ["user"]}}),
            json!({"https://hasura.io/jwt/claims": {"x-hasura-user-id": "user_1", "x-hasura-default-role": "user", "x-hasura-allowed-roles": ["user"]}}),
        ),
    ];
    assert!(cases.len() >= 40);
    for (claims, expected) in cases {
        assert_eq!(render(claims.clone()), expected, "claims: {claims}");
    }
}

#[test]
fn malformed_templates_are_refused_with_where_and_why() {
    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"a": "{{user.id"}),
            "claims.a: shortcode opened at character 0 is not closed",
        ),
        (
            json!({"a": "x {{}}"}),
            "claims.a: shortcode at character 2: expected a value",
        ),
        (
            json!({"a": "{{ || user.id}}"}),
            "claims.a: shortcode at character 0: expected a value",
        ),
        (
            json!({"a": "{{user.id ||}}"}),
            "claims.a: shortcode at character 0: expected a value",
        ),
        (json!({"a": "{{user.id user.name}}"}), "expected `||`"),
        (json!({"a": "{{\"x\"}}"}), "single quotes"),
        (json!({"a": "{{'open}}"}), "not closed with '"),
        (json!({"a": "{{user}}"}), "is not a shortcode"),
        (json!({"a": "{{null}}"}), "is not a shortcode"),
        (json!({"a": "{{user..id}}"}), "is not a shortcode"),
        (json!({"a": "{{1abc}}"}), "is not a number"),
        (json!({"a": {"b": [1, "{{user.id"]}}), "claims.a.b[1]: "),
    ];
    for (claims, why) in bad {
        let err = Claims::parse(claims.as_object().unwrap()).expect_err(&claims.to_string());
        assert!(err.to_string().contains(why), "{claims}: {err}");
    }
    assert!(Claims::parse(&Map::new()).is_ok());
}
