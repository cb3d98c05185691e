#!/usr/bin/env python3
"""Writes events/<function>/<case>.json (API Gateway HTTP API, payload 2.0) and
<case>.expected.json for every fixture listed below, and events/webhooks/stream-batch.json.
Run it after changing the list or a value in shared/src/fixtures/mod.rs, and commit events/:

    python3 scripts/gen-events.py

Where the values come from: the fixtures' data (ids, the Backend API secret key, the client
token, the ticket, the signed tokens) is defined once, in shared/src/fixtures/mod.rs, which
`local-api seed --fixtures` writes into a store. This script holds none of those values: it
reads the constants it needs from that file (`pub const NAME: &str = "...";`, on one line
or over several) and stops, naming the constant, if one is missing or is not a plain
string literal. `"*"` in an expected body matches any value.

    python3 scripts/gen-events.py --check

writes nothing: it compares what it would write with the files in events/, lists the stale,
missing and extra ones, and exits 1 if there are any (0 if none; 2 if it cannot run).
functions/tests/fixtures.rs runs it on every test run (`events_are_what_the_generator_writes`).
"""
import argparse
import json
import urllib.parse
import os
import re
import sys

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
ROOT = os.path.join(REPO, "events")
FIXTURES_RS = os.path.join(REPO, "shared", "src", "fixtures", "mod.rs")
REGENERATE = "run `python3 scripts/gen-events.py` (and commit events/)"


def fail(message):
    """Stops the script: it cannot run (exit 2, apart from --check's 1 for stale files)."""
    print(f"gen-events.py: {message}", file=sys.stderr)
    sys.exit(2)


# `pub const NAME: &str = "...";` at the start of a line (doc comments and indented
# items never match), the literal on the same line or the next ones.
RUST_STR_CONST = re.compile(r'^pub const ([A-Z][A-Z0-9_]*): &str\s*=\s*"((?:[^"\\]|\\.)*)"\s*;', re.M | re.S)
RUST_ESCAPE = re.compile(r"\\(\r?\n\s*|.)", re.S)
RUST_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def rust_string(name, literal):
    """The value of a Rust string literal's body: its simple escapes, and a backslash at a
    line's end, which skips the line break and the next line's indentation."""
    def one(m):
        escape = m.group(1)
        if escape[0] in "\r\n":
            return ""
        if escape not in RUST_ESCAPES:
            fail(f"{os.path.relpath(FIXTURES_RS, REPO)}: {name}: the escape \\{escape} is not read here; "
                 "write the value without it, or teach scripts/gen-events.py to read it")
        return RUST_ESCAPES[escape]
    return RUST_ESCAPE.sub(one, literal)


def fixture_constants(path=FIXTURES_RS):
    """Every `pub const NAME: &str` of shared/src/fixtures/mod.rs, by name."""
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as e:
        fail(f"cannot read the fixtures' data, {e}")
    return {m.group(1): rust_string(m.group(1), m.group(2)) for m in RUST_STR_CONST.finditer(source)}


RUST_CONSTANTS = fixture_constants()


def seeded(name):
    """The constant `name` of shared/src/fixtures/mod.rs; the script stops if there is none."""
    if name not in RUST_CONSTANTS:
        fail(f"{os.path.relpath(FIXTURES_RS, REPO)} has no `pub const {name}: &str = \"...\";` "
             "(a plain string literal, at the start of a line), which the events need: "
             "define it there, or stop using it in scripts/gen-events.py")
    return RUST_CONSTANTS[name]


# The seeded data, as `local-api seed --fixtures` writes it. Public, fixtures-only values.
SECRET_KEY = seeded("SECRET_KEY")
USER_ID = seeded("USER_ID")
USER_PASSWORD = seeded("USER_PASSWORD")
CLIENT_ID = seeded("CLIENT_ID")
SESSION_ID = seeded("SESSION_ID")
ENDED_SESSION_ID = seeded("ENDED_SESSION_ID")
TICKET = seeded("TICKET")
TEMPLATE_ID = seeded("TEMPLATE_ID")
TEMPLATE_NAME = seeded("TEMPLATE_NAME")
SIGNING_KEY_KID = seeded("SIGNING_KEY_KID")
CLIENT_SECRET_KID = seeded("CLIENT_SECRET_KID")
WEBHOOK_ENDPOINT_ID = seeded("WEBHOOK_ENDPOINT_ID")
CLIENT_TOKEN = seeded("CLIENT_TOKEN")
# Two more native clients carrying flows in progress: Ada's sign-in waiting for its email
# code and a sign-up waiting for its code (the first); Ada's sign-in after its reset code,
# waiting for the new password (the second).
SIGN_IN_CLIENT_TOKEN = seeded("SIGN_IN_CLIENT_TOKEN")
SIGN_IN_ID = seeded("SIGN_IN_ID")
SIGN_UP_ID = seeded("SIGN_UP_ID")
SIGN_UP_EMAIL = seeded("SIGN_UP_EMAIL")
RESET_CLIENT_TOKEN = seeded("RESET_CLIENT_TOKEN")
RESET_SIGN_IN_ID = seeded("RESET_SIGN_IN_ID")
FIXTURE_CODE = seeded("FIXTURE_CODE")
# Made from the fixed keys: an expired session token of the active session, a refresh
# grant for it, and a handshake nonce opening to one directive.
EXPIRED_SESSION_TOKEN = seeded("EXPIRED_SESSION_TOKEN")
REFRESH_GRANT = seeded("REFRESH_GRANT")
HANDSHAKE_NONCE = seeded("HANDSHAKE_NONCE")
HANDSHAKE_NONCE_DIRECTIVE = seeded("HANDSHAKE_NONCE_DIRECTIVE")

SK = {"authorization": f"Bearer {SECRET_KEY}"}
NATIVE = {"authorization": CLIENT_TOKEN}
FLOWS = {"authorization": SIGN_IN_CLIENT_TOKEN}
RESET = {"authorization": RESET_CLIENT_TOKEN}
FORM = {"content-type": "application/x-www-form-urlencoded"}
# One byte over the functions' body limit (shared::http::request::MAX_BODY_BYTES).
OVERSIZED_BODY = "x" * (64 * 1024 + 1)
JSON = {"content-type": "application/json"}
S = f"/v1/client/sessions/{SESSION_ID}"
ENDED = f"/v1/client/sessions/{ENDED_SESSION_ID}"


def err(status, code):
    return status, {"errors": [{"code": code}]}


# (function, case, method, route path pattern, concrete path, query, headers, body, cookies, (status, body subset))
FIXTURES = [
    ("fapi-client", "get-client-native", "GET", "/v1/client", "/v1/client", "_is_native=1", NATIVE, None, [],
     (200, {"response": {"object": "client", "last_active_session_id": SESSION_ID}, "client": None})),
    ("fapi-client", "get-client-without-token", "GET", "/v1/client", "/v1/client", "", {}, None, [],
     (200, {"response": None, "client": None})),
    # A cookie that does not verify never locks a browser out: it gets a new client.
    ("fapi-client", "get-client-forged-cookie", "GET", "/v1/client", "/v1/client", "", {}, None, ["__client=forged.token.value"],
     (200, {"response": {"object": "client", "sessions": []}, "client": None})),
    # Production instances never take a client token from a URL.
    ("fapi-client", "get-client-dev-browser-token", "GET", "/v1/client", "/v1/client", "__clerk_db_jwt=some.dev.token", {}, None, [],
     err(401, "dev_browser_unauthenticated")),
    ("fapi-client", "create-client", "POST", "/v1/client", "/v1/client", "", {}, "", [],
     (200, {"response": {"object": "client", "sessions": []}, "client": None})),
    ("fapi-client", "sign-out-all-tunnelled", "POST", "/v1/client/sessions", "/v1/client/sessions", "_method=DELETE&_is_native=1", NATIVE, "", [],
     (200, {"response": {"object": "client", "sessions": [], "last_active_session_id": None}})),
    ("fapi-client", "sign-out-all-tunnelled-without-client", "POST", "/v1/client/sessions", "/v1/client/sessions", "_method=DELETE", {}, "", [],
     err(401, "signed_out")),
    ("fapi-client", "sign-out-all", "DELETE", "/v1/client/sessions", "/v1/client/sessions", "_is_native=1", NATIVE, None, [],
     (200, {"response": {"object": "client", "sessions": []}})),
    ("fapi-client", "sign-out-all-without-client", "DELETE", "/v1/client/sessions", "/v1/client/sessions", "", {}, None, [],
     err(401, "signed_out")),
    # A server-rendered app's handshake: back to the app (an allowed origin; the Frontend
    # API's own here) with a nonce for its server; never to another origin.
    ("fapi-client", "handshake", "GET", "/v1/client/handshake", "/v1/client/handshake", "redirect_url=https%3A%2F%2Fclerk.example.com%2Fdashboard&format=nonce", {}, None, [f"__client={CLIENT_TOKEN}"],
     (307, None)),
    ("fapi-client", "handshake-to-another-origin", "GET", "/v1/client/handshake", "/v1/client/handshake", "redirect_url=https%3A%2F%2Felsewhere.example%2F", {}, None, [f"__client={CLIENT_TOKEN}"],
     err(422, "form_param_value_invalid")),
    # The signed-in user's sessions; revoking one of them (never another user's).
    ("fapi-client", "list-my-sessions", "GET", "/v1/me/sessions", "/v1/me/sessions", "_is_native=1", NATIVE, None, [],
     (200, "*")),
    ("fapi-client", "list-my-sessions-signed-out", "GET", "/v1/me/sessions", "/v1/me/sessions", "", {}, None, [],
     err(401, "signed_out")),
    ("fapi-client", "list-my-active-sessions", "GET", "/v1/me/sessions/active", "/v1/me/sessions/active", f"_is_native=1&_clerk_session_id={SESSION_ID}", NATIVE, None, [],
     (200, [{"id": SESSION_ID, "status": "active"}])),
    ("fapi-client", "list-my-active-sessions-signed-out", "GET", "/v1/me/sessions/active", "/v1/me/sessions/active", "", {}, None, [],
     err(401, "signed_out")),
    ("fapi-client", "revoke-my-ended-session", "POST", "/v1/me/sessions/{session_id}/revoke", f"/v1/me/sessions/{ENDED_SESSION_ID}/revoke", "_is_native=1", NATIVE, "", [],
     err(400, "invalid_action_for_session")),
    ("fapi-client", "revoke-my-session", "POST", "/v1/me/sessions/{session_id}/revoke", f"/v1/me/sessions/{SESSION_ID}/revoke", "_is_native=1", NATIVE, "", [],
     (200, {"response": {"id": SESSION_ID, "status": "revoked"}})),
    ("fapi-client", "revoke-unknown-session", "POST", "/v1/me/sessions/{session_id}/revoke", "/v1/me/sessions/sess_unknown/revoke", "_is_native=1", NATIVE, "", [],
     err(404, "resource_not_found")),
    ("fapi-dev-browser", "create-dev-browser", "POST", "/v1/dev_browser", "/v1/dev_browser", "", {}, "", [],
     (200, {"object": "dev_browser", "id": "*"})),
    # clerk-js tunnels DELETE through POST; the route has no DELETE.
    ("fapi-dev-browser", "delete-dev-browser-tunnelled", "POST", "/v1/dev_browser", "/v1/dev_browser", "_method=DELETE", {}, "", [],
     err(405, "method_not_allowed")),
    ("fapi-sign-ins", "sign-in-with-ticket", "POST", "/v1/client/sign_ins", "/v1/client/sign_ins", "_is_native=1", FORM, f"strategy=ticket&ticket={TICKET}", [],
     (200, {"response": {"object": "sign_in_attempt", "status": "complete", "created_session_id": "*"}, "client": {"object": "client"}})),
    ("fapi-sign-ins", "sign-in-with-unknown-ticket", "POST", "/v1/client/sign_ins", "/v1/client/sign_ins", "_is_native=1", FORM, "strategy=ticket&ticket=not-a-ticket", [],
     err(400, "ticket_invalid")),
    ("fapi-sign-ins", "sign-in-password-without-identifier", "POST", "/v1/client/sign_ins", "/v1/client/sign_ins", "_is_native=1", FORM, "password=x", [],
     err(422, "form_param_missing")),
    # A new native client each time: Ada is signed in on the fixtures' client already.
    ("fapi-sign-ins", "sign-in-with-password", "POST", "/v1/client/sign_ins", "/v1/client/sign_ins", "_is_native=1", FORM,
     "identifier=ada%40example.com&password=" + urllib.parse.quote_plus(USER_PASSWORD), [],
     (200, {"response": {"object": "sign_in_attempt", "status": "complete", "created_session_id": "*"}, "client": {"object": "client", "sign_in": None}})),
    ("fapi-sign-ins", "sign-in-unknown-identifier", "POST", "/v1/client/sign_ins", "/v1/client/sign_ins", "_is_native=1", FORM, "identifier=nobody%40example.com", [],
     err(422, "form_identifier_not_found")),
    ("fapi-sign-ins", "get-unknown-sign-in", "GET", "/v1/client/sign_ins/{sign_in_id}", "/v1/client/sign_ins/sia_unknown", "_is_native=1", NATIVE, None, [],
     err(404, "resource_not_found")),
    ("fapi-sign-ins", "prepare-first-factor-unknown-sign-in", "POST", "/v1/client/sign_ins/{sign_in_id}/prepare_first_factor", "/v1/client/sign_ins/sia_unknown/prepare_first_factor", "_is_native=1", {**NATIVE, **FORM}, "strategy=email_code", [],
     err(404, "resource_not_found")),
    ("fapi-sign-ins", "attempt-first-factor-unknown-sign-in", "POST", "/v1/client/sign_ins/{sign_in_id}/attempt_first_factor", "/v1/client/sign_ins/sia_unknown/attempt_first_factor", "_is_native=1", {**NATIVE, **FORM}, "strategy=email_code&code=123456", [],
     err(404, "resource_not_found")),
    ("fapi-sign-ins", "reset-password-unknown-sign-in", "POST", "/v1/client/sign_ins/{sign_in_id}/reset_password", "/v1/client/sign_ins/sia_unknown/reset_password", "_is_native=1", {**NATIVE, **FORM}, "password=a-new-secret-77", [],
     err(404, "resource_not_found")),
    ("fapi-sign-ins", "get-sign-in", "GET", "/v1/client/sign_ins/{sign_in_id}", f"/v1/client/sign_ins/{SIGN_IN_ID}", "_is_native=1", FLOWS, None, [],
     (200, {"response": {"object": "sign_in_attempt", "id": SIGN_IN_ID, "status": "needs_first_factor", "identifier": "ada@example.com"}, "client": {"sign_in": {"id": SIGN_IN_ID}}})),
    ("fapi-sign-ins", "prepare-first-factor", "POST", "/v1/client/sign_ins/{sign_in_id}/prepare_first_factor", f"/v1/client/sign_ins/{SIGN_IN_ID}/prepare_first_factor", "_is_native=1", {**FLOWS, **FORM}, "strategy=email_code", [],
     (200, {"response": {"id": SIGN_IN_ID, "first_factor_verification": {"strategy": "email_code", "status": "unverified", "attempts": 0}}})),
    ("fapi-sign-ins", "attempt-first-factor", "POST", "/v1/client/sign_ins/{sign_in_id}/attempt_first_factor", f"/v1/client/sign_ins/{SIGN_IN_ID}/attempt_first_factor", "_is_native=1", {**FLOWS, **FORM}, f"strategy=email_code&code={FIXTURE_CODE}", [],
     (200, {"response": {"id": SIGN_IN_ID, "status": "complete", "created_session_id": "*"}, "client": {"sign_in": None}})),
    ("fapi-sign-ins", "reset-password", "POST", "/v1/client/sign_ins/{sign_in_id}/reset_password", f"/v1/client/sign_ins/{RESET_SIGN_IN_ID}/reset_password", "_is_native=1", {**RESET, **FORM}, "password=a-brand-new-secret-77", [],
     (200, {"response": {"id": RESET_SIGN_IN_ID, "status": "complete", "created_session_id": "*"}})),
    ("fapi-sign-ups", "get-sign-up", "GET", "/v1/client/sign_ups/{sign_up_id}", f"/v1/client/sign_ups/{SIGN_UP_ID}", "_is_native=1", FLOWS, None, [],
     (200, {"response": {"object": "sign_up_attempt", "id": SIGN_UP_ID, "status": "missing_requirements", "email_address": SIGN_UP_EMAIL}})),
    ("fapi-sign-ups", "update-sign-up", "PATCH", "/v1/client/sign_ups/{sign_up_id}", f"/v1/client/sign_ups/{SIGN_UP_ID}", "_is_native=1", {**FLOWS, **FORM}, "first_name=Sam", [],
     (200, {"response": {"id": SIGN_UP_ID, "first_name": "Sam"}})),
    # clerk-js sends the PATCH as POST with _method=PATCH.
    ("fapi-sign-ups", "update-sign-up-tunnelled", "POST", "/v1/client/sign_ups/{sign_up_id}", f"/v1/client/sign_ups/{SIGN_UP_ID}", "_is_native=1&_method=PATCH", {**FLOWS, **FORM}, "last_name=Sample", [],
     (200, {"response": {"id": SIGN_UP_ID, "last_name": "Sample"}})),
    ("fapi-sign-ups", "prepare-verification", "POST", "/v1/client/sign_ups/{sign_up_id}/prepare_verification", f"/v1/client/sign_ups/{SIGN_UP_ID}/prepare_verification", "_is_native=1", {**FLOWS, **FORM}, "strategy=email_code", [],
     (200, {"response": {"id": SIGN_UP_ID, "verifications": {"email_address": {"status": "unverified", "next_action": "needs_attempt"}}}})),
    ("fapi-sign-ups", "attempt-verification", "POST", "/v1/client/sign_ups/{sign_up_id}/attempt_verification", f"/v1/client/sign_ups/{SIGN_UP_ID}/attempt_verification", "_is_native=1", {**FLOWS, **FORM}, f"strategy=email_code&code={FIXTURE_CODE}", [],
     (200, {"response": {"id": SIGN_UP_ID, "status": "complete", "created_user_id": "*", "created_session_id": "*"}, "client": {"sign_up": None}})),
    ("fapi-sign-ups", "sign-up", "POST", "/v1/client/sign_ups", "/v1/client/sign_ups", "_is_native=1", FORM, "email_address=sam%40example.com&password=plum-tractor-vinegar-42", [],
     (200, {"response": {"object": "sign_up_attempt", "status": "missing_requirements", "unverified_fields": ["email_address"]}, "client": {"object": "client"}})),
    ("fapi-sign-ups", "sign-up-with-a-taken-address", "POST", "/v1/client/sign_ups", "/v1/client/sign_ups", "_is_native=1", FORM, "email_address=ada%40example.com&password=plum-tractor-vinegar-42", [],
     err(422, "form_identifier_exists")),
    ("fapi-sign-ups", "get-unknown-sign-up", "GET", "/v1/client/sign_ups/{sign_up_id}", "/v1/client/sign_ups/sua_unknown", "_is_native=1", NATIVE, None, [],
     err(404, "resource_not_found")),
    ("fapi-sign-ups", "update-unknown-sign-up", "PATCH", "/v1/client/sign_ups/{sign_up_id}", "/v1/client/sign_ups/sua_unknown", "_is_native=1", {**NATIVE, **FORM}, "first_name=Grace", [],
     err(404, "resource_not_found")),
    ("fapi-sign-ups", "update-unknown-sign-up-tunnelled", "POST", "/v1/client/sign_ups/{sign_up_id}", "/v1/client/sign_ups/sua_unknown", "_is_native=1&_method=PATCH", {**NATIVE, **FORM}, "first_name=Grace", [],
     err(404, "resource_not_found")),
    ("fapi-sign-ups", "prepare-verification-unknown-sign-up", "POST", "/v1/client/sign_ups/{sign_up_id}/prepare_verification", "/v1/client/sign_ups/sua_unknown/prepare_verification", "_is_native=1", {**NATIVE, **FORM}, "strategy=email_code", [],
     err(404, "resource_not_found")),
    ("fapi-sign-ups", "attempt-verification-unknown-sign-up", "POST", "/v1/client/sign_ups/{sign_up_id}/attempt_verification", "/v1/client/sign_ups/sua_unknown/attempt_verification", "_is_native=1", {**NATIVE, **FORM}, "strategy=email_code&code=123456", [],
     err(404, "resource_not_found")),
    ("fapi-environment", "get-environment", "GET", "/v1/environment", "/v1/environment", "", {}, None, [],
     (200, {"auth_config": {"object": "auth_config"}, "user_settings": {"sign_up": {"mode": "public"}}, "organization_settings": {"enabled": False}})),
    # clerk-js's PATCH on each load against a development instance, tunnelled through POST.
    ("fapi-environment", "update-environment-tunnelled", "POST", "/v1/environment", "/v1/environment", "_method=PATCH", {}, "", [],
     (200, {"auth_config": {"object": "auth_config"}})),
    ("fapi-environment", "update-environment", "PATCH", "/v1/environment", "/v1/environment", "", {}, None, [],
     (200, {"auth_config": {"object": "auth_config"}})),
    # A browser origin outside ALLOWED_ORIGINS may not change state, even where nothing changes.
    ("fapi-environment", "update-environment-from-unknown-origin", "PATCH", "/v1/environment", "/v1/environment", "", {"origin": "https://elsewhere.example"}, None, [],
     err(400, "origin_invalid")),
    ("fapi-environment", "update-environment-tunnelled-from-unknown-origin", "POST", "/v1/environment", "/v1/environment", "_method=PATCH", {"origin": "https://elsewhere.example"}, "", [],
     err(400, "origin_invalid")),
    ("fapi-jwks", "get-jwks", "GET", "/.well-known/jwks.json", "/.well-known/jwks.json", "", {}, None, [],
     (200, {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "e": "AQAB", "kid": SIGNING_KEY_KID, "n": "*"}]})),
    # API Gateway passes a GET's body; one over the limit is refused before anything else.
    ("fapi-environment", "get-environment-body-too-large", "GET", "/v1/environment", "/v1/environment", "", {}, OVERSIZED_BODY, [],
     err(413, "request_body_too_large")),
    ("fapi-jwks", "get-jwks-body-too-large", "GET", "/.well-known/jwks.json", "/.well-known/jwks.json", "", {}, OVERSIZED_BODY, [],
     err(413, "request_body_too_large")),
    ("fapi-session-get", "get-session", "GET", "/v1/client/sessions/{session_id}", S, "_is_native=1", NATIVE, None, [],
     (200, {"response": {"object": "session", "id": SESSION_ID, "status": "active", "user": {"id": USER_ID}}, "client": {"object": "client"}})),
    ("fapi-session-get", "get-unknown-session", "GET", "/v1/client/sessions/{session_id}", "/v1/client/sessions/sess_unknown", "_is_native=1", NATIVE, None, [],
     err(404, "resource_not_found")),
    ("fapi-session-get", "get-session-signed-out", "GET", "/v1/client/sessions/{session_id}", S, "", {}, None, [],
     err(401, "signed_out")),
    ("fapi-session-touch", "touch-session", "POST", "/v1/client/sessions/{session_id}/touch", S + "/touch", "_is_native=1", {**NATIVE, **FORM}, "active_organization_id=&intent=select_session", [],
     (200, {"response": {"id": SESSION_ID, "status": "active"}, "client": {"last_active_session_id": SESSION_ID}})),
    ("fapi-session-touch", "touch-on-focus", "POST", "/v1/client/sessions/{session_id}/touch", S + "/touch", "_is_native=1", {**NATIVE, **FORM}, "intent=focus", [],
     (200, {"response": {"id": SESSION_ID}, "client": None})),
    ("fapi-session-touch", "touch-ended-session", "POST", "/v1/client/sessions/{session_id}/touch", ENDED + "/touch", "_is_native=1", NATIVE, "", [],
     err(400, "invalid_action_for_session")),
    ("fapi-session-touch", "touch-with-organization", "POST", "/v1/client/sessions/{session_id}/touch", S + "/touch", "_is_native=1", {**NATIVE, **FORM}, "active_organization_id=org_1", [],
     err(404, "organization_not_found_or_unauthorized")),
    ("fapi-session-end", "end-session", "POST", "/v1/client/sessions/{session_id}/end", S + "/end", "_is_native=1", NATIVE, "", [],
     (200, {"response": {"id": SESSION_ID, "status": "ended"}, "client": {"last_active_session_id": None}})),
    ("fapi-session-end", "end-ended-session", "POST", "/v1/client/sessions/{session_id}/end", ENDED + "/end", "_is_native=1", NATIVE, "", [],
     err(400, "invalid_action_for_session")),
    ("fapi-session-remove", "remove-session", "POST", "/v1/client/sessions/{session_id}/remove", S + "/remove", "_is_native=1", NATIVE, "", [],
     (200, {"response": {"id": SESSION_ID, "status": "removed"}})),
    ("fapi-session-remove", "remove-unknown-session", "POST", "/v1/client/sessions/{session_id}/remove", "/v1/client/sessions/sess_unknown/remove", "_is_native=1", NATIVE, "", [],
     err(404, "resource_not_found")),
    ("fapi-session-tokens", "mint-session-token", "POST", "/v1/client/sessions/{session_id}/tokens", S + "/tokens", "_is_native=1", NATIVE, "", [],
     (200, {"object": "token", "jwt": "*"})),
    ("fapi-session-tokens", "mint-for-ended-session", "POST", "/v1/client/sessions/{session_id}/tokens", ENDED + "/tokens", "_is_native=1", NATIVE, "", [],
     err(401, "signed_out")),
    ("fapi-session-tokens", "mint-with-forged-cookie", "POST", "/v1/client/sessions/{session_id}/tokens", S + "/tokens", "", {}, "", ["__client=forged.token.value"],
     err(401, "authentication_invalid")),
    ("fapi-session-template-tokens", "mint-template-token", "POST", "/v1/client/sessions/{session_id}/tokens/{template_name}", f"{S}/tokens/{TEMPLATE_NAME}", "_is_native=1", NATIVE, "", [],
     (200, {"object": "token", "jwt": "*"})),
    ("fapi-session-template-tokens", "mint-unknown-template", "POST", "/v1/client/sessions/{session_id}/tokens/{template_name}", S + "/tokens/nope", "_is_native=1", NATIVE, "", [],
     err(404, "resource_not_found")),
    ("bapi", "create-user", "POST", "/v1/users", "/v1/users", "", {**SK, **JSON}, json.dumps({"first_name": "Grace", "last_name": "Hopper"}), [],
     (200, {"object": "user", "first_name": "Grace", "last_name": "Hopper"})),
    ("bapi", "create-user-bad-email", "POST", "/v1/users", "/v1/users", "", {**SK, **JSON}, json.dumps({"email_address": ["not-an-email"]}), [],
     err(422, "form_param_format_invalid")),
    ("bapi", "create-user-wrong-secret-key", "POST", "/v1/users", "/v1/users", "", {"authorization": "Bearer sk_wrong_0123456789abcdef0123456789", **JSON}, "{}", [],
     err(401, "authentication_invalid")),
    ("bapi", "get-user", "GET", "/v1/users/{user_id}", f"/v1/users/{USER_ID}", "", SK, None, [],
     (200, {"object": "user", "id": USER_ID, "private_metadata": {"tier": "gold"}})),
    ("bapi", "get-unknown-user", "GET", "/v1/users/{user_id}", "/v1/users/user_unknown", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "update-user", "PATCH", "/v1/users/{user_id}", f"/v1/users/{USER_ID}", "", {**SK, **JSON}, json.dumps({"last_name": "Hopper", "public_metadata": {"plan": "pro"}}), [],
     (200, {"object": "user", "id": USER_ID, "last_name": "Hopper", "public_metadata": {"plan": "pro"}, "private_metadata": {"tier": "gold"}})),
    ("bapi", "update-user-metadata-too-large", "PATCH", "/v1/users/{user_id}", f"/v1/users/{USER_ID}", "", {**SK, **JSON}, json.dumps({"public_metadata": {"blob": "x" * 8192}}), [],
     (422, {"errors": [{"code": "form_param_value_invalid", "meta": {"param_name": "public_metadata"}}]})),
    ("bapi", "update-unknown-user", "PATCH", "/v1/users/{user_id}", "/v1/users/user_unknown", "", {**SK, **JSON}, "{}", [],
     err(404, "resource_not_found")),
    # A ban revokes the user's sessions; a deletion ends them and removes the user.
    ("bapi", "ban-user", "POST", "/v1/users/{user_id}/ban", f"/v1/users/{USER_ID}/ban", "", SK, None, [],
     (200, {"object": "user", "id": USER_ID, "banned": True})),
    ("bapi", "ban-unknown-user", "POST", "/v1/users/{user_id}/ban", "/v1/users/user_unknown/ban", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "unban-user", "POST", "/v1/users/{user_id}/unban", f"/v1/users/{USER_ID}/unban", "", SK, None, [],
     (200, {"object": "user", "id": USER_ID, "banned": False})),
    ("bapi", "unlock-user", "POST", "/v1/users/{user_id}/unlock", f"/v1/users/{USER_ID}/unlock", "", SK, None, [],
     (200, {"object": "user", "id": USER_ID, "locked": False})),
    ("bapi", "unlock-unknown-user", "POST", "/v1/users/{user_id}/unlock", "/v1/users/user_unknown/unlock", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "unban-unknown-user", "POST", "/v1/users/{user_id}/unban", "/v1/users/user_unknown/unban", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "verify-password", "POST", "/v1/users/{user_id}/verify_password", f"/v1/users/{USER_ID}/verify_password", "", {**SK, **JSON}, json.dumps({"password": USER_PASSWORD}), [],
     (200, {"verified": True})),
    ("bapi", "verify-password-incorrect", "POST", "/v1/users/{user_id}/verify_password", f"/v1/users/{USER_ID}/verify_password", "", {**SK, **JSON}, json.dumps({"password": "not Ada's passphrase"}), [],
     err(422, "form_password_incorrect")),
    ("bapi", "delete-user", "DELETE", "/v1/users/{user_id}", f"/v1/users/{USER_ID}", "", SK, None, [],
     (200, {"object": "user", "id": USER_ID, "deleted": True})),
    ("bapi", "delete-unknown-user", "DELETE", "/v1/users/{user_id}", "/v1/users/user_unknown", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "create-sign-in-token", "POST", "/v1/sign_in_tokens", "/v1/sign_in_tokens", "", {**SK, **JSON}, json.dumps({"user_id": USER_ID}), [],
     (200, {"object": "sign_in_token", "status": "pending", "user_id": USER_ID, "token": "*"})),
    ("bapi", "create-sign-in-token-unknown-user", "POST", "/v1/sign_in_tokens", "/v1/sign_in_tokens", "", {**SK, **JSON}, json.dumps({"user_id": "user_unknown"}), [],
     err(404, "resource_not_found")),
    # Filtered by client too: sign-in-with-ticket, once played, adds a session of the
    # user on a new client, which a re-seed leaves.
    ("bapi", "list-sessions-paginated", "GET", "/v1/sessions", "/v1/sessions", f"user_id={USER_ID}&client_id={CLIENT_ID}&paginated=true", SK, None, [],
     (200, {"total_count": 2})),
    ("bapi", "list-sessions-bad-status", "GET", "/v1/sessions", "/v1/sessions", "status=sleeping", SK, None, [],
     err(422, "form_param_value_invalid")),
    ("bapi", "get-session", "GET", "/v1/sessions/{session_id}", f"/v1/sessions/{SESSION_ID}", "", SK, None, [],
     (200, {"object": "session", "id": SESSION_ID, "user_id": USER_ID, "status": "active"})),
    ("bapi", "get-unknown-session", "GET", "/v1/sessions/{session_id}", "/v1/sessions/sess_unknown", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "revoke-session", "POST", "/v1/sessions/{session_id}/revoke", f"/v1/sessions/{SESSION_ID}/revoke", "", SK, None, [],
     (200, {"id": SESSION_ID, "status": "revoked"})),
    ("bapi", "revoke-ended-session", "POST", "/v1/sessions/{session_id}/revoke", f"/v1/sessions/{ENDED_SESSION_ID}/revoke", "", SK, None, [],
     err(400, "invalid_action_for_session")),
    ("bapi", "create-session-token", "POST", "/v1/sessions/{session_id}/tokens", f"/v1/sessions/{SESSION_ID}/tokens", "", SK, None, [],
     (200, {"object": "token", "jwt": "*"})),
    ("bapi", "create-session-token-ended", "POST", "/v1/sessions/{session_id}/tokens", f"/v1/sessions/{ENDED_SESSION_ID}/tokens", "", SK, None, [],
     err(401, "signed_out")),
    ("bapi", "create-template-token", "POST", "/v1/sessions/{session_id}/tokens/{template_name}", f"/v1/sessions/{SESSION_ID}/tokens/{TEMPLATE_NAME}", "", {**SK, **JSON}, json.dumps({"expires_in_seconds": 120}), [],
     (200, {"object": "token", "jwt": "*"})),
    ("bapi", "create-template-token-unknown-template", "POST", "/v1/sessions/{session_id}/tokens/{template_name}", f"/v1/sessions/{SESSION_ID}/tokens/nope", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "create-jwt-template", "POST", "/v1/jwt_templates", "/v1/jwt_templates", "", {**SK, **JSON}, json.dumps({"name": "supabase", "claims": {"role": "authenticated", "email": "{{user.primary_email_address}}"}}), [],
     (200, {"object": "jwt_template", "name": "supabase", "lifetime": 60, "custom_signing_key": False})),
    ("bapi", "create-jwt-template-reserved-claim", "POST", "/v1/jwt_templates", "/v1/jwt_templates", "", {**SK, **JSON}, json.dumps({"name": "bad", "claims": {"sub": "x"}}), [],
     err(400, "jwt_template_reserved_claim")),
    ("bapi", "get-handshake-payload", "GET", "/v1/clients/handshake_payload", "/v1/clients/handshake_payload", f"nonce={HANDSHAKE_NONCE}", SK, None, [],
     (200, {"directives": [HANDSHAKE_NONCE_DIRECTIVE]})),
    ("bapi", "get-handshake-payload-unknown-nonce", "GET", "/v1/clients/handshake_payload", "/v1/clients/handshake_payload", "nonce=cts_unknown.AAAA", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "refresh-session", "POST", "/v1/sessions/{session_id}/refresh", f"/v1/sessions/{SESSION_ID}/refresh", "", {**SK, **JSON},
     json.dumps({"expired_token": EXPIRED_SESSION_TOKEN, "refresh_token": REFRESH_GRANT, "request_origin": "https://clerk.example.com", "format": "cookie"}), [],
     (200, {"object": "cookies", "cookies": "*"})),
    ("bapi", "refresh-session-foreign-grant", "POST", "/v1/sessions/{session_id}/refresh", f"/v1/sessions/{SESSION_ID}/refresh", "", {**SK, **JSON},
     json.dumps({"expired_token": EXPIRED_SESSION_TOKEN, "refresh_token": f"{CLIENT_SECRET_KID}.AAAA", "request_origin": "https://clerk.example.com"}), [],
     err(401, "authentication_invalid")),
    ("bapi", "list-jwt-templates", "GET", "/v1/jwt_templates", "/v1/jwt_templates", "paginated=true", SK, None, [],
     (200, {"total_count": 1, "data": [{"name": TEMPLATE_NAME}]})),
    ("bapi", "list-jwt-templates-bad-limit", "GET", "/v1/jwt_templates", "/v1/jwt_templates", "limit=0", SK, None, [],
     err(422, "form_param_value_invalid")),
    ("bapi", "get-jwt-template", "GET", "/v1/jwt_templates/{template_id}", f"/v1/jwt_templates/{TEMPLATE_ID}", "", SK, None, [],
     (200, {"id": TEMPLATE_ID, "name": TEMPLATE_NAME})),
    ("bapi", "get-unknown-jwt-template", "GET", "/v1/jwt_templates/{template_id}", "/v1/jwt_templates/jtmp_unknown", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "update-jwt-template", "PATCH", "/v1/jwt_templates/{template_id}", f"/v1/jwt_templates/{TEMPLATE_ID}", "", {**SK, **JSON}, json.dumps({"lifetime": 120}), [],
     (200, {"id": TEMPLATE_ID, "lifetime": 120})),
    ("bapi", "update-jwt-template-bad-lifetime", "PATCH", "/v1/jwt_templates/{template_id}", f"/v1/jwt_templates/{TEMPLATE_ID}", "", {**SK, **JSON}, json.dumps({"lifetime": 5}), [],
     err(422, "form_param_value_invalid")),
    ("bapi", "delete-jwt-template", "DELETE", "/v1/jwt_templates/{template_id}", f"/v1/jwt_templates/{TEMPLATE_ID}", "", SK, None, [],
     (200, {"object": "jwt_template", "id": TEMPLATE_ID, "deleted": True})),
    ("bapi", "delete-unknown-jwt-template", "DELETE", "/v1/jwt_templates/{template_id}", "/v1/jwt_templates/jtmp_unknown", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "get-jwks", "GET", "/v1/jwks", "/v1/jwks", "", SK, None, [],
     (200, {"keys": [{"kty": "RSA", "kid": SIGNING_KEY_KID}]})),
    ("bapi", "get-jwks-without-secret-key", "GET", "/v1/jwks", "/v1/jwks", "", {}, None, [],
     err(401, "authentication_invalid")),
    ("bapi", "get-instance-keys", "GET", "/v1/instance/keys", "/v1/instance/keys", "", SK, None, [],
     (200, {"object": "instance_keys", "session_signing_keys": [{"state": "current", "kid": SIGNING_KEY_KID}]})),
    ("bapi", "get-instance-keys-without-secret-key", "GET", "/v1/instance/keys", "/v1/instance/keys", "", {}, None, [],
     err(401, "authentication_invalid")),
    ("bapi", "rotate-instance-keys", "POST", "/v1/instance/keys/rotate", "/v1/instance/keys/rotate", "", {**SK, **JSON}, json.dumps({"keys": "session_signing"}), [],
     (200, {"object": "instance_keys", "session_signing_keys": [{"state": "current"}, {"state": "next"}]})),
    # Extensions: webhook endpoints.
    ("bapi", "list-webhook-endpoints", "GET", "/v1/webhooks/endpoints", "/v1/webhooks/endpoints", "", SK, None, [],
     (200, {"total_count": 1, "data": [{"object": "webhook_endpoint", "id": WEBHOOK_ENDPOINT_ID}]})),
    ("bapi", "list-webhook-endpoints-without-secret-key", "GET", "/v1/webhooks/endpoints", "/v1/webhooks/endpoints", "", {}, None, [],
     err(401, "authentication_invalid")),
    ("bapi", "create-webhook-endpoint", "POST", "/v1/webhooks/endpoints", "/v1/webhooks/endpoints", "", {**SK, **JSON},
     json.dumps({"url": "https://hooks.example.com/clerk", "events": ["session.created", "session.ended"]}), [],
     (200, {"object": "webhook_endpoint", "url": "https://hooks.example.com/clerk", "events": ["session.created", "session.ended"], "secret": "*"})),
    ("bapi", "create-webhook-endpoint-plain-http", "POST", "/v1/webhooks/endpoints", "/v1/webhooks/endpoints", "", {**SK, **JSON},
     json.dumps({"url": "http://hooks.example.com/clerk"}), [],
     err(422, "form_param_value_invalid")),
    ("bapi", "delete-webhook-endpoint", "DELETE", "/v1/webhooks/endpoints/{endpoint_id}", f"/v1/webhooks/endpoints/{WEBHOOK_ENDPOINT_ID}", "", SK, None, [],
     (200, {"object": "webhook_endpoint", "id": WEBHOOK_ENDPOINT_ID, "deleted": True})),
    ("bapi", "delete-unknown-webhook-endpoint", "DELETE", "/v1/webhooks/endpoints/{endpoint_id}", "/v1/webhooks/endpoints/ep_unknown", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "rotate-webhook-secret", "POST", "/v1/webhooks/endpoints/{endpoint_id}/rotate_secret", f"/v1/webhooks/endpoints/{WEBHOOK_ENDPOINT_ID}/rotate_secret", "", SK, None, [],
     (200, {"object": "webhook_endpoint", "id": WEBHOOK_ENDPOINT_ID, "secret": "*"})),
    ("bapi", "rotate-unknown-webhook-secret", "POST", "/v1/webhooks/endpoints/{endpoint_id}/rotate_secret", "/v1/webhooks/endpoints/ep_unknown/rotate_secret", "", SK, None, [],
     err(404, "resource_not_found")),
    ("bapi", "rotate-instance-keys-unknown-kind", "POST", "/v1/instance/keys/rotate", "/v1/instance/keys/rotate", "", {**SK, **JSON}, json.dumps({"keys": "everything"}), [],
     err(422, "form_param_format_invalid")),
]


def event(method, route, path, query, headers, body, cookies):
    hdrs = {"host": "abc123.execute-api.eu-west-1.amazonaws.com", "user-agent": "fixture", **headers}
    return {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": query,
        "cookies": cookies,
        "headers": hdrs,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.10", "userAgent": "fixture"},
            "requestId": "fixture-request-id",
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": "26/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795694400000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


# The webhooks function's DynamoDB Streams batch: two event items of one session, as the
# DynamoDB store writes them (shared/src/store/dynamodb, `Write::Event`), and a change to
# another item, which the function ignores (template.yaml's filter keeps it away anyway).
STREAM_TIME_MS = 1795694400000
# Clerk's `instance_id` in the payloads: not seeded data, any id will do (the function sends
# a payload as it stands; a server's is `ins_` and a hash of its Frontend API URL).
STREAM_INSTANCE_ID = "ins_fixtures000000000000000001"


def session_event(msg_id, kind, status, at):
    data = {
        "object": "session", "id": SESSION_ID, "user_id": USER_ID, "client_id": CLIENT_ID,
        "actor": None, "status": status, "last_active_organization_id": None,
        "last_active_at": STREAM_TIME_MS, "latest_activity": None,
        "expire_at": STREAM_TIME_MS + 7 * 86400000, "abandon_at": STREAM_TIME_MS + 30 * 86400000,
        "updated_at": at, "created_at": STREAM_TIME_MS, "tasks": None, "user": None,
    }
    payload = {
        "data": data,
        "event_attributes": {"http_request": {"client_ip": "192.0.2.10", "user_agent": "fixture"}},
        "instance_id": STREAM_INSTANCE_ID, "object": "event", "timestamp": at, "type": kind,
    }
    return {"id": msg_id, "type": kind, "key": SESSION_ID, "created_at": at,
            "payload": json.dumps(payload, separators=(",", ":"))}


def stream_record(seq, name, keys, image):
    return {
        "eventID": f"fixture-{seq}", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {"ApproximateCreationDateTime": STREAM_TIME_MS // 1000, "Keys": keys, "NewImage": image,
                     "SequenceNumber": f"{seq:021d}", "SizeBytes": 512, "StreamViewType": "NEW_IMAGE"},
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/sessions/stream/2026-11-26T12:00:00.000",
    }


def event_item(seq, event):
    keys = {"pk": {"S": f"EVENT#{event['key']}"}, "sk": {"S": f"EVENT#{event['created_at']:016d}#{event['id']}"}}
    image = {**keys, "data": {"S": json.dumps(event, separators=(",", ":"))}, "version": {"N": "1"},
             "ttl": {"N": str(event["created_at"] // 1000 + 86400)}}
    return stream_record(seq, "INSERT", keys, image)


def stream_batch():
    created = session_event("msg_fixtures000000000000000001", "session.created", "active", STREAM_TIME_MS)
    ended = session_event("msg_fixtures000000000000000002", "session.ended", "ended", STREAM_TIME_MS + 1000)
    other_keys = {"pk": {"S": f"CLIENT#{CLIENT_ID}"}, "sk": {"S": "CLIENT"}}
    return {"Records": [
        event_item(1, created),
        stream_record(2, "MODIFY", other_keys, {**other_keys, "data": {"S": "{}"}}),
        event_item(3, ended),
    ]}


def as_json(value):
    return json.dumps(value, indent=2) + "\n"


def render():
    """Every file the script writes, by its path under events/, with its text."""
    files = {os.path.join("webhooks", "stream-batch.json"): as_json(stream_batch())}
    for function, case, method, route, path, query, headers, body, cookies, (status, expected) in FIXTURES:
        name = os.path.join(function, case)
        if f"{name}.json" in files:
            fail(f"the case {function}/{case} is listed twice in FIXTURES")
        files[f"{name}.json"] = as_json(event(method, route, path, query, headers, body, cookies))
        files[f"{name}.expected.json"] = as_json({"status": status, "body": expected})
    return files


def on_disk():
    """Every file in the folders of events/ (the files beside them, README.md, are not
    written here), by its path under events/."""
    found = set()
    for entry in sorted(os.listdir(ROOT)):
        folder = os.path.join(ROOT, entry)
        if os.path.isdir(folder):
            for parent, _, names in os.walk(folder):
                found.update(os.path.relpath(os.path.join(parent, n), ROOT) for n in names)
    return found


def read(name):
    with open(os.path.join(ROOT, name), "rb") as f:
        return f.read()


def check(files):
    """Exit status 1, listing them, if events/ is not what write() would make of it."""
    present = on_disk()
    missing = sorted(set(files) - present)
    stale = sorted(n for n in set(files) & present if read(n) != files[n].encode("utf-8"))
    extra = sorted(present - set(files))
    if not (missing or stale or extra):
        print(f"events/ is up to date ({len(FIXTURES)} fixtures)")
        return 0
    print("events/ is not what scripts/gen-events.py writes:")
    for kind, names in (("stale", stale), ("missing", missing), ("extra", extra)):
        for n in names:
            print(f"  {kind + ':':9}events/{n}")
    print(REGENERATE)
    return 1


def write(files):
    """Makes events/ hold exactly `files` (and its README.md)."""
    for name in sorted(on_disk() - set(files)):
        os.remove(os.path.join(ROOT, name))
    for parent, _, _ in sorted(os.walk(ROOT), reverse=True):
        if parent != ROOT and not os.listdir(parent):
            os.rmdir(parent)
    for name, text in files.items():
        path = os.path.join(ROOT, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    print(f"wrote {len(FIXTURES)} fixtures")
    return 0


def main():
    parser = argparse.ArgumentParser(description="Writes (or checks) the fixtures of events/.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1, listing them, if files in events/ are stale, missing or extra")
    args = parser.parse_args()
    files = render()
    sys.exit(check(files) if args.check else write(files))


if __name__ == "__main__":
    main()
