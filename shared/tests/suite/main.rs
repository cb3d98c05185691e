//! Every integration test of `shared`, in one test binary: the AWS SDKs and the crate are
//! linked once rather than once per file, which is most of a test build on two cores.
//! Each module is one area; the harness they share is the `testkit` crate (`app`, and
//! `stores` with `each_store!`).

mod anonymous_clients;
mod client_auth;
mod devices;
mod dynamodb_calls;
mod dynamodb_faults;
mod email_delivery;
mod fapi_sessions;
mod fixtures_seed;
mod golden;
mod handshake;
mod import_cycles;
mod jwt_templates;
mod keys;
mod limits;
mod metrics_counted;
mod retries;
mod session_races;
mod sessions_per_client;
mod sign_in_and_bapi;
mod sign_ins_by_identifier;
mod sign_ups;
mod sqlite_store;
mod store_contract;
mod tokens;
mod user_passwords;
mod users_lifecycle;
mod webhooks;
