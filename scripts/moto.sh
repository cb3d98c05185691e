# Sourced by scripts/test.sh and scripts/bench.sh: `start_moto` starts a DynamoDB-, KMS-,
# SQS- and SES-compatible server (moto, from .venv) on a free 127.0.0.1 port, points the
# AWS SDK's environment at it, and stops it when the calling script exits (after running
# `$on_exit`, which the caller may set first; the trap reads it at exit, so what is added
# to it later, as scripts/smtp.sh's start_smtp does, runs too).

start_moto() {
  local port
  port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  moto_log=$(mktemp)
  # One request at a time, so transactions are atomic as on DynamoDB (see the script).
  .venv/bin/python scripts/moto_server.py 127.0.0.1 "$port" >"$moto_log" 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$moto_log"; eval "${on_exit:-}"' EXIT
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
  # And the webhooks function's SQS queues.
  export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$port"
  # And SES (v2), where the email tests send codes (read back by scripts/moto_server.py's
  # GET /_test/ses/messages).
  export AWS_ENDPOINT_URL_SESV2="http://127.0.0.1:$port"
  export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  unset AWS_PROFILE AWS_SESSION_TOKEN
}
