#!/usr/bin/env bash
# The compatibility suite: Clerk's own SDKs and schemathesis against the local server.
# Run by scripts/test.sh after the cargo tests (it needs the .venv that script makes);
# on its own: `bash tests/compat/run.sh` from the repository root after one test run.
# Starts local-api (embedded store, in memory) on a free port, and one more each for the key
# rotation, handshake, webhooks and sign-in suites (the browser and components suites start their own), runs every scenario,
# stops them, and prints one line:
# "compat result: N passed; F failed".
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/compat"
python="$root/.venv/bin/python"
[ -x "$python" ] || { echo "compat: $python missing; run scripts/test.sh once"; exit 1; }

echo "== compat: Node packages (npm ci from the lockfile)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error --prefer-offline)

echo "== compat: local-api"
# The workspace with its tests, as `cargo test --workspace` builds it: one resolution of
# every dependency's features, so after the test command's cargo tests nothing compiles
# again (`-p local-api` alone would resolve fewer features and rebuild the AWS SDK).
cargo build --locked --quiet --workspace --bins --tests
work=$(mktemp -d)
server_pids=()
# What scripts/smtp.sh's start_smtp adds to stop its sink (it sets no EXIT trap of its own
# when one is set, as this one is): run by cleanup.
on_exit=
cleanup() {
  local status=$?
  local pid
  for pid in "${server_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  eval "${on_exit:-}"
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
export COMPAT_SECRET_KEY="sk_compat_$("$python" -c 'import secrets; print(secrets.token_hex(24))')"
export COMPAT_APP_ORIGIN="http://app.test"
local_api_bin="$root/target/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug/local-api"

# start_local_api NAME [VAR=value...]: a local-api with the compat settings plus the given
# ones, on a free port; its log is $work/NAME.log and its URL goes into $local_api_url.
start_local_api() {
  local log="$work/$1.log" pid url=""
  shift
  # Made before the server starts, so the first read below never races the shell opening it.
  : >"$log"
  # WEBHOOK_ALLOW_LOOPBACK: the suites' webhook receivers listen on 127.0.0.1.
  env -u FRONTEND_API_URL -u STORE_BACKEND -u EMBEDDED_STORE_PATH -u DYNAMODB_TABLE_NAME \
    BACKEND_API_SECRET_KEY="$COMPAT_SECRET_KEY" ALLOWED_ORIGINS="$COMPAT_APP_ORIGIN" \
    WEBHOOK_ALLOW_LOOPBACK=true RUST_LOG=warn "$@" \
    "$local_api_bin" --port 0 --in-memory >"$log" 2>&1 &
  pid=$!
  server_pids+=("$pid")
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^local-api: ready on //p' "$log")
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "compat: local-api ($log) did not start"; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { echo "compat: no ready line in $log"; exit 1; }
  local_api_url=$url
}

start_local_api server
export COMPAT_URL=$local_api_url
echo "local-api on $COMPAT_URL"
# The rotation suite rotates keys, so it gets a server of its own: the other suites keep one
# key of each kind. A 2 s JWKS cache window and 30 s session tokens put a whole key
# lifecycle (published, signing, retiring, gone) within well under a minute.
start_local_api rotation-server JWKS_CACHE_WINDOW_SECONDS=2 SESSION_TOKEN_LIFETIME_SECONDS=30
export COMPAT_ROTATION_URL=$local_api_url
echo "local-api for key rotation on $COMPAT_ROTATION_URL"
# The handshake suite waits for a session token to expire for real once: 30 s tokens.
start_local_api handshake-server SESSION_TOKEN_LIFETIME_SECONDS=30
handshake_url=$local_api_url
echo "local-api for the handshake on $handshake_url"
# The webhooks suite's receivers fail on purpose: a retry schedule of 300 ms pauses (eight
# attempts, as by default) keeps it to seconds.
start_local_api webhooks-server WEBHOOK_RETRY_SCHEDULE=300ms,300ms,300ms,300ms,300ms,300ms,300ms
webhooks_url=$local_api_url
echo "local-api for webhooks on $webhooks_url"
# The sign-in suite reads its codes from a real SMTP server: scripts/test.sh's sink
# (SMTP_SINK_SMTP_URL, SMTP_SINK_URL), or, run on its own, one started here.
if [ -z "${SMTP_SINK_SMTP_URL:-}" ] || [ -z "${SMTP_SINK_URL:-}" ]; then
  # smtp.sh names .venv and scripts/ from the repository root.
  cwd=$PWD
  cd "$root"
  source "$root/scripts/smtp.sh"
  start_smtp
  cd "$cwd"
fi
start_local_api signin-server SMTP_URL="$SMTP_SINK_SMTP_URL" EMAIL_FROM="Compat <no-reply@compat.test>"
signin_url=$local_api_url
echo "local-api for sign-in (codes by SMTP to $SMTP_SINK_SMTP_URL) on $signin_url"

passed=0
failed=0
count() { passed=$((passed + $1)); failed=$((failed + $2)); }

# node:test's spec reporter ends with "ℹ pass N" and "ℹ fail N".
node_suite() {  # name file [node flags...]
  local out="$work/$1.out" file="$2"
  shift 2
  node "$@" --test --test-force-exit --test-reporter=spec "$file" >"$out" 2>&1 || true
  cat "$out"
  local p f
  p=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$out")
  f=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$out")
  [ -n "$p" ] && [ -n "$f" ] || { p=0; f=1; }
  count "$p" "$f"
}

echo "== compat: clerk-js (react-native build, native client flow)"
node_suite clerk-js "$here/js/clerk-js.test.cjs" -C react-native

echo "== compat: @clerk/backend"
node_suite backend "$here/js/backend.test.cjs"

echo "== compat: the handshake of server-rendered apps (@clerk/backend, own local-api)"
COMPAT_URL="$handshake_url" node_suite handshake "$here/js/handshake.test.cjs"

echo "== compat: webhooks (@clerk/backend verifyWebhook and svix, own local-api)"
COMPAT_URL="$webhooks_url" node_suite webhooks "$here/js/webhooks.test.cjs"

echo "== compat: sign-up and sign-in (clerk-js react-native, codes from an SMTP sink, own local-api)"
COMPAT_URL="$signin_url" SMTP_SINK_URL="$SMTP_SINK_URL" node_suite sign-in "$here/js/sign-in.test.cjs" -C react-native

echo "== compat: key rotation (@clerk/backend and clerk-js react-native, own local-api)"
node_suite rotation "$here/js/rotation.test.cjs" -C react-native

echo "== compat: clerk-js browser build in headless Chromium (production and development instances)"
# The suite starts its own two local-api processes behind a TLS edge (browser/edge.cjs);
# screenshots go to target/browser-suite/.
LOCAL_API_BIN="$local_api_bin" node_suite browser "$here/browser/browser.test.cjs"

echo "== compat: @clerk/ui's prebuilt <SignUp/> and <SignIn/> in headless Chromium (production instance, codes from the SMTP sink)"
# Its own deployment again (browser/edge.cjs), with email delivery to the sink; screenshots
# go to target/browser-suite/components-*.
LOCAL_API_BIN="$local_api_bin" SMTP_SINK_SMTP_URL="$SMTP_SINK_SMTP_URL" SMTP_SINK_URL="$SMTP_SINK_URL" \
  node_suite components "$here/browser/components.test.cjs"

echo "== compat: clerk-backend-api (Python)"
if (cd "$here/python" && "$python" -m unittest -v test_clerk_backend_api test_import_users) >"$work/python.out" 2>&1; then ok=1; else ok=0; fi
cat "$work/python.out"
ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' "$work/python.out")
bad=$(grep -cE '\.\.\. (FAIL|ERROR)$' "$work/python.out" || true)
if [ -z "$ran" ]; then count 0 1; elif [ "$ok" = 1 ]; then count "$ran" 0; else count $((ran - bad)) "$((bad > 0 ? bad : 1))"; fi

echo "== compat: schemathesis against $COMPAT_URL/openapi.yaml"
set -a
eval "$("$python" "$here/schemathesis/seed.py")"
set +a
if "$root/.venv/bin/schemathesis" --config-file "$here/schemathesis/schemathesis.toml" \
  run "$COMPAT_URL/openapi.yaml" --url "$COMPAT_URL" \
  --phases examples,coverage,fuzzing -n 25 --seed 1 --generation-database none --workers 1 --no-color --max-redirects 0 \
  --report junit --report-dir "$work/schemathesis" >"$work/schemathesis.out" 2>&1; then ok=1; else ok=0; fi
cat "$work/schemathesis.out"
# One scenario per operation: passed unless schemathesis reported a failure for it.
read -r p f < <("$python" - "$work/schemathesis" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
cases = [c for path in glob.glob(sys.argv[1] + "/*.xml") for c in ET.parse(path).iter("testcase")]
bad = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
print(len(cases) - bad, bad)
PY
)
if [ "$ok" = 1 ] && [ "$f" = 0 ] && [ "$p" -gt 0 ]; then count "$p" 0; else count "$p" "$((f > 0 ? f : 1))"; fi

echo "compat result: $passed passed; $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
