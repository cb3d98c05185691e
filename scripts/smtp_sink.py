"""An SMTP server for the test command that keeps every message it receives in memory,
and a small HTTP server to read them back.

SMTP (aiosmtpd) on HOST:SMTP_PORT accepts any sender and recipient, without TLS or
authentication. HTTP on HOST:HTTP_PORT:

  GET /messages            every message, oldest first, as a JSON array of
                           {"to": [...], "from": ..., "subject": ..., "text": ..., "html": ...}
                           ("to": the envelope's recipients; "from": the From header;
                           "text" and "html": the text/plain and text/html parts, decoded,
                           null when absent)
  GET /messages?to=ADDR    only those to ADDR (compared without regard to case)
  DELETE /messages         forgets every message

Usage: python scripts/smtp_sink.py HOST SMTP_PORT HTTP_PORT
"""

import email
import email.policy
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

messages = []
lock = threading.Lock()


def part(message, subtype):
    body = message.get_body(preferencelist=(subtype,))
    return None if body is None else body.get_content()


class Sink:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        record = {
            "to": list(envelope.rcpt_tos),
            "from": str(message.get("From", envelope.mail_from)),
            "subject": str(message.get("Subject", "")),
            "text": part(message, "plain"),
            "html": part(message, "html"),
        }
        with lock:
            messages.append(record)
        return "250 Message accepted for delivery"


class Messages(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/messages":
            return self.answer(404, {"error": "not found"})
        to = parse_qs(url.query).get("to", [None])[0]
        with lock:
            found = [
                m for m in messages
                if to is None or any(r.lower() == to.lower() for r in m["to"])
            ]
        self.answer(200, found)

    def do_DELETE(self):
        if urlsplit(self.path).path != "/messages":
            return self.answer(404, {"error": "not found"})
        with lock:
            messages.clear()
        self.answer(200, [])

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    host, smtp_port, http_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # Keeps the bytes as received (`original_content`) for the stdlib's MIME parser.
    smtp = Controller(Sink(), hostname=host, port=smtp_port, decode_data=False)
    smtp.start()
    try:
        ThreadingHTTPServer((host, http_port), Messages).serve_forever()
    finally:
        smtp.stop()
