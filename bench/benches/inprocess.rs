//! In-process figures with criterion (headline means and confidence intervals); the
//! percentiles (p50, p99) come from the `bench` binary's own interleaved sampler, since
//! criterion reports no p99. `bash scripts/bench.sh` runs both.
//!
//! - `tokens/floor_rsa_sign`: one RSA-2048 PKCS#1 v1.5 SHA-256 signature, key parsed once.
//! - `tokens/handler`: `POST /v1/client/sessions/{id}/tokens` through `routes::dispatch`.
//! - `session/get`: `GET /v1/client/sessions/{id}`.
//! - `session/environment`: `GET /v1/environment`, the trivial route.

use bench::in_process::{self, SignFloor};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (app, s) = rt.block_on(async {
        let app = in_process::app().await;
        let s = in_process::native_session(&app).await;
        (app, s)
    });
    let minted = rt.block_on(app.dispatch(in_process::tokens(&s)));
    assert_eq!(minted.status(), 200, "mint: {}", minted.body());
    let jwt: serde_json::Value = serde_json::from_str(minted.body()).expect("token JSON");
    let mut floor = SignFloor::new(jwt["jwt"].as_str().expect("jwt"));

    let mut tokens = c.benchmark_group("tokens");
    tokens.bench_function("floor_rsa_sign", |b| {
        b.iter(|| std::hint::black_box(floor.sign().len()))
    });
    tokens.bench_function("handler", |b| {
        b.to_async(&rt).iter_batched(
            || in_process::tokens(&s),
            |req| async { app.dispatch(req).await },
            BatchSize::SmallInput,
        )
    });
    tokens.finish();

    let mut session = c.benchmark_group("session");
    session.bench_function("get", |b| {
        b.to_async(&rt).iter_batched(
            || in_process::session(&s),
            |req| async { app.dispatch(req).await },
            BatchSize::SmallInput,
        )
    });
    session.bench_function("environment", |b| {
        b.to_async(&rt).iter_batched(
            in_process::environment,
            |req| async { app.dispatch(req).await },
            BatchSize::SmallInput,
        )
    });
    session.finish();
}

criterion_group!(inprocess, benches);
criterion_main!(inprocess);
