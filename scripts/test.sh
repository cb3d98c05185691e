#!/usr/bin/env bash
# Runs every check and test. Needs Rust, Python 3 and Node 20 (with npm); installs the rest
# (.venv from tests/requirements.txt, tests/compat/node_modules from its lockfile, Debian's
# chromium and openssl packages for the browser suite when missing) and starts a DynamoDB-,
# KMS- and SES-compatible server (moto) and an SMTP sink on free 127.0.0.1 ports for the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every build of the run names this machine's target triple, as `cargo lambda build` names
# it: the function that functions/tests/cargo_lambda.rs builds with it then reuses this
# run's compiled dependencies instead of compiling them all again. Artifacts go to
# target/<triple>/debug.
CARGO_BUILD_TARGET=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_BUILD_TARGET

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== Python tools (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt -c tests/constraints.txt

echo "== Chromium and openssl (Debian's packages) for the browser suite"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v openssl >/dev/null || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's wrapper script prints a shell warning before the version on some machines.
chromium --version 2>/dev/null | tail -1

echo "== template.yaml (cfn-lint): defaults (every option off); then every option on"
.venv/bin/cfn-lint template.yaml
# cfn-lint drops --parameters for a template with a Transform (it rebuilds its context after
# the SAM step), but it does resolve each !Ref to the parameter's default. So the variant
# changes defaults, and checks each change: a renamed parameter fails the run instead of
# linting the defaults again.
with_default() { # template, parameter, value
  sed -i "/^  $2:\$/,/^ \{0,2\}[A-Za-z]/ s|^    Default: .*\$|    Default: $3|" "$1"
  sed -n "/^  $2:\$/,/^ \{0,2\}[A-Za-z]/p" "$1" | grep -xF "    Default: $3" >/dev/null \
    || { echo "options-on variant: $2 not set"; exit 1; }
}
options_on=$(mktemp --suffix=.yaml)
cp template.yaml "$options_on"
# Per-caller limits behind CloudFront with a custom domain; key rotation unscheduled.
with_default "$options_on" EdgeRateLimiting '"true"'
with_default "$options_on" EdgeDomainName clerk.example.com
with_default "$options_on" EdgeCertificateArn \
  arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000
with_default "$options_on" KeyRotationIntervalDays 0
# X-Ray tracing on; every alarm notifies a topic.
with_default "$options_on" XRayTracing '"true"'
with_default "$options_on" AlarmTopicArn arn:aws:sns:us-east-1:123456789012:alarms
.venv/bin/cfn-lint "$options_on"
rm -f "$options_on"

echo "== DynamoDB-, KMS- and SES-compatible server (moto); SMTP sink"
log=$(mktemp)
on_exit='rm -f "$log"'
source scripts/moto.sh
start_moto
# An SMTP sink for the email tests (SMTP_SINK_SMTP_URL, SMTP_SINK_URL), stopped with moto.
source scripts/smtp.sh
start_smtp
# The DynamoDB tests fail rather than skip when this is set.
export REQUIRE_DYNAMODB=1
# cargo-lambda from .venv: functions/tests/cargo_lambda.rs builds a function with it and
# plays every fixture through `cargo lambda watch`/`invoke`; it fails rather than skips.
export CARGO_LAMBDA="$PWD/.venv/bin/cargo-lambda" REQUIRE_CARGO_LAMBDA=1

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
