//! THE route table: every route of both APIs, one row each. Everything else about a route
//! is derived from its row ([`crate::endpoint::Endpoint`], its name, its API, the metric
//! labels, what `template.yaml` and `docs/openapi.yaml` must hold) or checked against it
//! by a test that prints the fix (docs/architecture.md, "Adding an endpoint").
//!
//! A function block: `CONST "binary-name" Api (how it starts) { rows }`: the Lambda
//! function that serves its routes (its binary in `functions/src/bin`, its resource in
//! template.yaml). `Backend` is the Backend API (`bapi`), `Frontend` the Frontend API.
//!
//! A row: `Endpoint METHOD "/path/{param}" Access |state, request, client| handler`.
//! - `Endpoint` names it (metrics label answers with it);
//! - `Access`: `Client` (Frontend API, acts for the caller's client: a client token it
//!   cannot read fails it), `Public` (Frontend API, never needs a client: the public
//!   documents, `POST /v1/dev_browser`), `SecretKey` (Backend API: the secret key is
//!   checked before the handler runs);
//! - the handler: parse → one `app/` operation → render (`api/fapi`, `api/bapi`).
//!
//! The table is a macro so that two modules read the same rows: `endpoint.rs` (the names,
//! which the metrics use, with no handler code) and `routes.rs` (the routes and their
//! handlers), without either importing the other.

/// Calls `$then! { … }` with every function and its rows.
macro_rules! route_table {
    ($then:ident) => {
        $then! {
            /// Clients, sign-out, the handshake, the signed-in user's sessions.
            FAPI_CLIENT "fapi-client" Frontend (SIGNS) {
                CreateClient POST "/v1/client" Client |s, _, auth| fapi::client::post(s, auth);
                GetClient GET "/v1/client" Client |s, req, auth| fapi::client::get(s, req, auth);
                RemoveClientSessions DELETE "/v1/client/sessions" Client |s, req, auth| fapi::client::remove_sessions(s, req, auth);
                Handshake GET "/v1/client/handshake" Client |s, req, auth| fapi::handshake::get(s, req, auth);
                ListMySessions GET "/v1/me/sessions" Client |s, req, auth| fapi::me::all(s, req, auth);
                ListMyActiveSessions GET "/v1/me/sessions/active" Client |s, req, auth| fapi::me::active(s, req, auth);
                RevokeMySession POST "/v1/me/sessions/{session_id}/revoke" Client |s, req, auth| fapi::me::revoke(s, req, auth);
            }
            FAPI_DEV_BROWSER "fapi-dev-browser" Frontend (SIGNS) {
                CreateDevBrowser POST "/v1/dev_browser" Public |s, _, _| fapi::client::dev_browser(s);
            }
            /// Sign-ins: a ticket, or an identifier with a password or an email code.
            FAPI_SIGN_INS "fapi-sign-ins" Frontend (SIGNS) {
                CreateSignIn POST "/v1/client/sign_ins" Client |s, req, auth| fapi::sign_ins::create(s, req, auth);
                GetSignIn GET "/v1/client/sign_ins/{sign_in_id}" Client |s, req, auth| fapi::sign_ins::get(s, req, auth);
                PrepareSignInFirstFactor POST "/v1/client/sign_ins/{sign_in_id}/prepare_first_factor" Client |s, req, auth| fapi::sign_ins::prepare_first_factor(s, req, auth);
                AttemptSignInFirstFactor POST "/v1/client/sign_ins/{sign_in_id}/attempt_first_factor" Client |s, req, auth| fapi::sign_ins::attempt_first_factor(s, req, auth);
                ResetSignInPassword POST "/v1/client/sign_ins/{sign_in_id}/reset_password" Client |s, req, auth| fapi::sign_ins::reset_password(s, req, auth);
            }
            /// Sign-ups: an email address and password, the address verified by a code.
            FAPI_SIGN_UPS "fapi-sign-ups" Frontend (SIGNS) {
                CreateSignUp POST "/v1/client/sign_ups" Client |s, req, auth| fapi::sign_ups::create(s, req, auth);
                GetSignUp GET "/v1/client/sign_ups/{sign_up_id}" Client |s, req, auth| fapi::sign_ups::get(s, req, auth);
                UpdateSignUp PATCH "/v1/client/sign_ups/{sign_up_id}" Client |s, req, auth| fapi::sign_ups::update(s, req, auth);
                PrepareSignUpVerification POST "/v1/client/sign_ups/{sign_up_id}/prepare_verification" Client |s, req, auth| fapi::sign_ups::prepare_verification(s, req, auth);
                AttemptSignUpVerification POST "/v1/client/sign_ups/{sign_up_id}/attempt_verification" Client |s, req, auth| fapi::sign_ups::attempt_verification(s, req, auth);
            }
            /// Built from configuration alone: no store, no keys.
            FAPI_ENVIRONMENT "fapi-environment" Frontend (AppState::start_without_store) {
                GetEnvironment GET "/v1/environment" Public |s, _, _| fapi::environment::get(s);
                UpdateEnvironment PATCH "/v1/environment" Public |s, _, _| fapi::environment::update(s);
            }
            /// Publishes public keys only: never opens private material.
            FAPI_JWKS "fapi-jwks" Frontend (AppState::start_with_public_keys) {
                FrontendJwks GET "/.well-known/jwks.json" Public |s, _, _| fapi::jwks(s);
            }
            FAPI_SESSION_GET "fapi-session-get" Frontend (SIGNS) {
                GetSession GET "/v1/client/sessions/{session_id}" Client |s, req, auth| fapi::sessions::get(s, req, auth);
            }
            FAPI_SESSION_TOUCH "fapi-session-touch" Frontend (SIGNS) {
                TouchSession POST "/v1/client/sessions/{session_id}/touch" Client |s, req, auth| fapi::sessions::touch(s, req, auth);
            }
            FAPI_SESSION_END "fapi-session-end" Frontend (SIGNS) {
                EndSession POST "/v1/client/sessions/{session_id}/end" Client |s, req, auth| fapi::sessions::end(s, req, auth);
            }
            FAPI_SESSION_REMOVE "fapi-session-remove" Frontend (SIGNS) {
                RemoveSession POST "/v1/client/sessions/{session_id}/remove" Client |s, req, auth| fapi::sessions::remove(s, req, auth);
            }
            FAPI_SESSION_TOKENS "fapi-session-tokens" Frontend (SIGNS) {
                CreateSessionToken POST "/v1/client/sessions/{session_id}/tokens" Client |s, req, auth| fapi::sessions::tokens(s, req, auth);
            }
            FAPI_SESSION_TEMPLATE_TOKENS "fapi-session-template-tokens" Frontend (SIGNS) {
                CreateSessionTokenFromTemplate POST "/v1/client/sessions/{session_id}/tokens/{template_name}" Client |s, req, auth| fapi::sessions::template_token(s, req, auth);
            }
            /// The Backend API: called by servers, rarely, so one function serves it all.
            BAPI "bapi" Backend (AppState::start_backend_api) {
                CreateUser POST "/v1/users" SecretKey |s, req, _| bapi::users::create(s, req);
                GetUser GET "/v1/users/{user_id}" SecretKey |s, req, _| bapi::users::get(s, req);
                UpdateUser PATCH "/v1/users/{user_id}" SecretKey |s, req, _| bapi::users::update(s, req);
                DeleteUser DELETE "/v1/users/{user_id}" SecretKey |s, req, _| bapi::users::delete(s, req);
                BanUser POST "/v1/users/{user_id}/ban" SecretKey |s, req, _| bapi::users::ban(s, req);
                UnbanUser POST "/v1/users/{user_id}/unban" SecretKey |s, req, _| bapi::users::unban(s, req);
                UnlockUser POST "/v1/users/{user_id}/unlock" SecretKey |s, req, _| bapi::users::unlock(s, req);
                VerifyPassword POST "/v1/users/{user_id}/verify_password" SecretKey |s, req, _| bapi::users::verify_password(s, req);
                CreateSignInToken POST "/v1/sign_in_tokens" SecretKey |s, req, _| bapi::sign_in_tokens::create(s, req);
                GetHandshakePayload GET "/v1/clients/handshake_payload" SecretKey |s, req, _| bapi::clients::handshake_payload(s, req);
                ListSessions GET "/v1/sessions" SecretKey |s, req, _| bapi::sessions::list(s, req);
                GetBackendSession GET "/v1/sessions/{session_id}" SecretKey |s, req, _| bapi::sessions::get(s, req);
                RevokeSession POST "/v1/sessions/{session_id}/revoke" SecretKey |s, req, _| bapi::sessions::revoke(s, req);
                RefreshSession POST "/v1/sessions/{session_id}/refresh" SecretKey |s, req, _| bapi::sessions::refresh(s, req);
                CreateBackendSessionToken POST "/v1/sessions/{session_id}/tokens" SecretKey |s, req, _| bapi::sessions::tokens(s, req);
                CreateBackendTemplateToken POST "/v1/sessions/{session_id}/tokens/{template_name}" SecretKey |s, req, _| bapi::sessions::template_token(s, req);
                CreateJwtTemplate POST "/v1/jwt_templates" SecretKey |s, req, _| bapi::jwt_templates::create(s, req);
                ListJwtTemplates GET "/v1/jwt_templates" SecretKey |s, req, _| bapi::jwt_templates::list(s, req);
                GetJwtTemplate GET "/v1/jwt_templates/{template_id}" SecretKey |s, req, _| bapi::jwt_templates::get(s, req);
                UpdateJwtTemplate PATCH "/v1/jwt_templates/{template_id}" SecretKey |s, req, _| bapi::jwt_templates::update(s, req);
                DeleteJwtTemplate DELETE "/v1/jwt_templates/{template_id}" SecretKey |s, req, _| bapi::jwt_templates::delete(s, req);
                BackendJwks GET "/v1/jwks" SecretKey |s, _, _| bapi::jwks(s);
                // Extensions (not Clerk's API): the keyring's lifecycle, and rotating it.
                GetInstanceKeys GET "/v1/instance/keys" SecretKey |s, _, _| bapi::keys::get(s);
                RotateInstanceKeys POST "/v1/instance/keys/rotate" SecretKey |s, req, _| bapi::keys::rotate(s, req);
                // Extensions: webhook endpoints (Clerk manages them in its Dashboard).
                ListWebhookEndpoints GET "/v1/webhooks/endpoints" SecretKey |s, _, _| bapi::webhooks::list(s);
                CreateWebhookEndpoint POST "/v1/webhooks/endpoints" SecretKey |s, req, _| bapi::webhooks::create(s, req);
                DeleteWebhookEndpoint DELETE "/v1/webhooks/endpoints/{endpoint_id}" SecretKey |s, req, _| bapi::webhooks::delete(s, req);
                RotateWebhookSecret POST "/v1/webhooks/endpoints/{endpoint_id}/rotate_secret" SecretKey |s, req, _| bapi::webhooks::rotate_secret(s, req);
            }
        }
    };
}
pub(crate) use route_table;
