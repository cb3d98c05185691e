//! Dev-only tooling shared by the tests and the benchmarks; nothing here ships.
//!
//! - [`app`]: the service in process (the real state and route table, a clock tests move,
//!   the embedded store), called through `routes::dispatch` as on Lambda.
//! - [`stores`]: the DynamoDB store of the test command's server, and [`each_store!`],
//!   which runs a test on each store.
//! - [`fixtures`]: the fixtures of `events/`, the data they are played against, and how an
//!   answer is held to its `.expected.json`.
//! - [`emulator`]: a Lambda Runtime API emulator that runs a function binary as Lambda does.
//! - [`local_api`]: the `local-api` binary as a process, once it says it is ready.
//! - [`metrics`]: a recorder that keeps counter values.
//! - [`receiver`]: a webhook receiver that records attempts and refuses the first ones.
//!
//! `shared`, `functions` and `local` use it as a dev-dependency only; `bench` depends on it.

pub mod app;
pub mod emulator;
pub mod fault_proxy;
pub mod fixtures;
pub mod local_api;
pub mod metrics;
pub mod receiver;
pub mod stores;
