//! The benchmark harness: the service in process (with the signing floor), an HTTP load
//! generator, prices, percentiles and the machine's description. `src/main.rs` drives a
//! whole run, one module of `src/figures/` per figure; `benches/inprocess.rs` (criterion)
//! reuses the in-process service. The Lambda Runtime API emulator, the fixtures' seeded
//! data and `local-api` as a process come from `testkit`, shared with the tests. How each
//! figure is taken, and why, is in `docs/benchmarks.md`.

pub mod costs;
pub mod in_process;
pub mod load;
pub mod machine;
pub mod stats;
