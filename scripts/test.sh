#!/usr/bin/env bash
# Runs every check and test. Needs Rust, Python 3 and Node 20 (with npm); installs the rest
# (.venv from tests/requirements.txt, tests/compat/node_modules from its lockfile) and
# starts a DynamoDB- and KMS-compatible server (moto) on a free 127.0.0.1 port for the run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== Python tools (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt -c tests/constraints.txt

echo "== template.yaml (cfn-lint): defaults; then EdgeRateLimiting on and key rotation unscheduled"
.venv/bin/cfn-lint template.yaml
edge_on=$(mktemp --suffix=.yaml)
sed '/^  EdgeRateLimiting:$/,/^  [A-Za-z]/ s/^    Default: "false"$/    Default: "true"/' template.yaml >"$edge_on"
grep -A2 '^  EdgeRateLimiting:$' "$edge_on" | grep -q 'Default: "true"' || { echo "option-on variant not made"; exit 1; }
.venv/bin/cfn-lint "$edge_on" --parameters EdgeDomainName=clerk.example.com \
  EdgeCertificateArn=arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000 \
  KeyRotationIntervalDays=0
rm -f "$edge_on"

echo "== DynamoDB- and KMS-compatible server (moto)"
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_log=$(mktemp)
log=$(mktemp)
# One request at a time, so transactions are atomic as on DynamoDB (see the script).
.venv/bin/python scripts/moto_server.py 127.0.0.1 "$port" >"$moto_log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log" "$moto_log"' EXIT
for _ in $(seq 1 100); do
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    cat "$moto_log"; echo "moto did not start"; exit 1
  fi
  sleep 0.1
done
echo "moto on 127.0.0.1:$port"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
# moto's server mode serves every service on one port: the keyring's KMS key lives there too.
export AWS_ENDPOINT_URL_KMS="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
unset AWS_PROFILE AWS_SESSION_TOKEN
# The DynamoDB tests fail rather than skip when this is set.
export REQUIRE_DYNAMODB=1

echo "== cargo tests"
cargo test --workspace --locked 2>&1 | tee "$log"

echo "== compatibility suite (Clerk's SDKs and schemathesis against local-api)"
bash tests/compat/run.sh 2>&1 | tee -a "$log"

# Proves the benchmark command works (a few iterations, no timing assertions). Not added
# to "$log": its criterion test mode prints "test result:" lines of its own.
echo "== benchmarks (smoke)"
bash scripts/bench.sh --quick

# One closing line for the whole run (cargo prints one per test binary, the suite one more).
awk '/^test result:/ { p += $4; f += $6 } /^compat result:/ { p += $3; f += $5 }
  END { printf "tests: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log"
