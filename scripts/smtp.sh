# Sourced by scripts/test.sh: `start_smtp` starts an SMTP sink (scripts/smtp_sink.py,
# aiosmtpd from .venv) on free 127.0.0.1 ports, exports where it listens, and stops it when
# the calling script exits.
#
#   SMTP_SINK_SMTP_URL  smtp://127.0.0.1:PORT (plain SMTP, no TLS, no authentication)
#   SMTP_SINK_URL       http://127.0.0.1:PORT: GET /messages[?to=ADDR], DELETE /messages
#
# SMTP_URL itself is not set: that would switch every test's email delivery to SMTP. The
# email tests build their mailer from SMTP_SINK_SMTP_URL.
#
# Stopping: the sink's clean-up is put in front of `$on_exit`, which scripts/moto.sh's EXIT
# trap runs; called without start_moto, start_smtp sets a trap that runs `$on_exit` itself.

start_smtp() {
  local smtp_port http_port
  read -r smtp_port http_port < <(.venv/bin/python -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
  smtp_log=$(mktemp)
  .venv/bin/python scripts/smtp_sink.py 127.0.0.1 "$smtp_port" "$http_port" >"$smtp_log" 2>&1 &
  smtp_pid=$!
  on_exit='kill "$smtp_pid" 2>/dev/null || true; wait "$smtp_pid" 2>/dev/null || true; rm -f "$smtp_log"; '"${on_exit:-}"
  if [ -z "$(trap -p EXIT)" ]; then
    trap 'eval "${on_exit:-}"' EXIT
  fi
  local ready=
  for _ in $(seq 1 100); do
    # The HTTP server starts after the SMTP one is up: one answer means both listen.
    if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$http_port/messages')" 2>/dev/null; then
      ready=1
      break
    fi
    if ! kill -0 "$smtp_pid" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    cat "$smtp_log"; echo "the SMTP sink did not start"; exit 1
  fi
  echo "SMTP sink on 127.0.0.1:$smtp_port (messages: http://127.0.0.1:$http_port/messages)"
  export SMTP_SINK_SMTP_URL="smtp://127.0.0.1:$smtp_port"
  export SMTP_SINK_URL="http://127.0.0.1:$http_port"
}
