#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md): what a session request costs, beside its floor.
#
#   bash scripts/bench.sh          full run: release binaries (the Lambda profile), criterion,
#                                  then the table, printed and written to BENCHMARKS.md
#   bash scripts/bench.sh --quick  smoke: dev binaries, a few iterations, criterion's test
#                                  mode; writes nothing in the repository, asserts no timing
#   bash scripts/bench.sh --functions
#                                  figures 3 to 5 only: the release function binaries' cold
#                                  starts (also on DynamoDB, with moto from .venv), steady
#                                  state and sizes; prints their rows
#   bash scripts/bench.sh --in-process
#                                  the in-process figures only (1, 2, 8, 10 and 11: minting,
#                                  session reads, writes, what metrics cost, a client answer
#                                  with 50 sessions) with the release driver; prints their
#                                  p50s and the rows of figures 10 and 11
#   bash scripts/bench.sh --http
#                                  figure 2 only (the session read beside the floor, in
#                                  process and over the release local-api); prints its rows
#   bash scripts/bench.sh --writes
#                                  figure 8 only (touch, end and ticket sign-in beside the
#                                  session read, in process and over the release local-api;
#                                  ~10 min, most of it signing in the sessions the ends use)
#   bash scripts/bench.sh --sign-in  figure 13 only: a password sign-in and a sign-up in
#                                process, beside one argon2id verification (or hash) and
#                                one RSA signature
#   bash scripts/bench.sh --soak  figure 12 only: the release local-api under a steady mixed
#                                  load, RSS and p99 every minute: SOAK_MINUTES (60) on the
#                                  embedded store, then SOAK_DYNAMODB_MINUTES (10) on DynamoDB
#                                  (moto from .venv); prints its rows
#   bash scripts/bench.sh --worst-case
#                                  figure 7 only: the release template-token function (the
#                                  driver runs from the dev build); prints its rows
set -euo pipefail
cd "$(dirname "$0")/.."

target=$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
# Where a profile's binaries are: below the target triple when one is named (the test
# command names it).
target="$target${CARGO_BUILD_TARGET:+/$CARGO_BUILD_TARGET}"

# The full run builds one package at a time, as each is built for its own use: the
# function binaries get exactly the features they deploy with (a joint build unifies
# features across packages, which builds other function binaries). The smoke builds the
# workspace in one go, which is cheaper and measures nothing.
build() {
  cargo build "$@" --locked -p functions --bins
  cargo build "$@" --locked -p local-api
  cargo build "$@" --locked -p bench --bins
}

case "${1:-}" in
  --quick)
    echo "== build (dev profile)"
    # With --tests, features unify as in `cargo test --workspace`: the test build is reused.
    cargo build --locked --workspace --bins --tests
    echo "== criterion, test mode (each benchmark once)"
    # --workspace, so features unify as in `cargo test --workspace` and nothing rebuilds.
    cargo test --locked --workspace --bench inprocess
    echo "== bench --quick"
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    "$target/debug/bench" --quick --bin-dir "$target/debug" --out "$out"
    echo "== bench --quick --soak-minutes 2 (two-second minutes, on the embedded store)"
    "$target/debug/bench" --quick --soak-minutes 2 --bin-dir "$target/debug"
    ;;
  --functions)
    echo "== build (release profile, as deployed)"
    cargo build --release --locked -p functions --bins
    cargo build --release --locked -p bench --bins
    if [ -x .venv/bin/python ] && .venv/bin/python -c 'import moto' 2>/dev/null; then
      source scripts/moto.sh
      start_moto
    fi
    "$target/release/bench" --functions-only --bin-dir "$target/release"
    ;;
  --in-process)
    echo "== build (release profile)"
    cargo build --release --locked -p bench --bins
    "$target/release/bench" --in-process-only --bin-dir "$target/release"
    ;;
  --sign-in)
    echo "== build (release profile)"
    cargo build --release --locked -p bench --bins
    "$target/release/bench" --sign-in-only --bin-dir "$target/release"
    ;;
  --soak)
    echo "== build (release profile)"
    cargo build --release --locked -p local-api
    cargo build --release --locked -p bench --bins
    source scripts/moto.sh
    start_moto
    "$target/release/bench" --soak-minutes "${SOAK_MINUTES:-60}" \
      --soak-dynamodb-minutes "${SOAK_DYNAMODB_MINUTES:-10}" --bin-dir "$target/release"
    ;;
  --http)
    echo "== build (release profile)"
    cargo build --release --locked -p local-api
    cargo build --release --locked -p bench --bins
    "$target/release/bench" --http-only --bin-dir "$target/release"
    ;;
  --writes)
    echo "== build (release profile)"
    cargo build --release --locked -p local-api
    cargo build --release --locked -p bench --bins
    "$target/release/bench" --writes-only --bin-dir "$target/release"
    ;;
  --worst-case)
    echo "== build (release function, dev driver)"
    cargo build --release --locked -p functions --bin fapi-session-template-tokens
    cargo build --locked -p bench --bin bench
    "$target/debug/bench" --worst-case-only --bin-dir "$target/release"
    ;;
  "")
    echo "== build (release profile, as deployed)"
    build --release
    # The cold starts on DynamoDB (figure 3) need a DynamoDB-compatible server: moto, from
    # the .venv the test command makes.
    if [ -x .venv/bin/python ] && .venv/bin/python -c 'import moto' 2>/dev/null; then
      source scripts/moto.sh
      start_moto
    else
      echo "no .venv with moto (run bash scripts/test.sh once): no cold starts on DynamoDB"
    fi
    echo "== criterion"
    cargo bench --locked -p bench --bench inprocess
    echo "== bench"
    "$target/release/bench" --bin-dir "$target/release" --criterion-dir "$target/criterion" --out BENCHMARKS.md
    ;;
  *)
    echo "usage: bash scripts/bench.sh [--quick | --functions | --in-process | --http | --writes | --worst-case]" >&2
    exit 2
    ;;
esac
