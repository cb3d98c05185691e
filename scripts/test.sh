#!/usr/bin/env bash
# Runs every check and test. Needs only Rust and Python 3; installs the rest into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== Python tools (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt

echo "== template.yaml (cfn-lint)"
.venv/bin/cfn-lint template.yaml

echo "== cargo tests"
cargo test --workspace --locked
