//! The benchmark harness: an in-process app, a percentile sampler, an HTTP load
//! generator, a Lambda Runtime API emulator that feeds many events to one process, and the
//! report. `src/main.rs` drives a whole run; `benches/inprocess.rs` (criterion) reuses the
//! in-process app. How each figure is taken, and why, is in `docs/benchmarks.md`.

pub mod app;
pub mod costs;
pub mod emulator;
pub mod load;
pub mod machine;
pub mod stats;
pub mod worst_case;
