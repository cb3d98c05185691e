"""moto's server for the test command, handling one request at a time, with DynamoDB's
idempotent transactions.

moto checks a transaction's conditions and then applies its writes without a lock, so two
concurrent TransactWriteItems could both pass the same condition, which DynamoDB never
allows. Race tests (two sign-ins with one ticket) then fail on moto, not on the store.
A lock around every request makes each call atomic, as it is on DynamoDB; connections are
still accepted concurrently.

moto also ignores TransactWriteItems' ClientRequestToken. DynamoDB answers a repeat of a
successful call with the same token (within 10 minutes) with success and changes nothing,
which is what makes the SDK's own retry of a call whose answer was lost safe; a repeat
with other parameters is refused (IdempotentParameterMismatchException). This server does
the same, so the service's retries are tested as they behave on AWS.

moto keeps the emails SES "sent" but offers no call to read them back; this server adds
one for the email tests: `GET /_test/ses/messages[?to=ADDR]` answers a JSON array of
{"id", "source", "destinations", "subject", "body"} (SendEmail; moto keeps the HTML part
when there is one) or {"id", "source", "destinations", "raw_data"} (raw emails), from
every account and region, oldest first.

Usage: python scripts/moto_server.py HOST PORT
"""

import hashlib
import io
import json
import sys
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from moto.ses.models import ses_backends
from urllib.parse import parse_qs
from werkzeug.serving import run_simple

moto_app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()

IDEMPOTENCY_WINDOW_SECS = 600
# ClientRequestToken -> (when, digest of the request without the token, status, headers, body)
completed = {}


def transaction_token(environ, body):
    """The ClientRequestToken of a TransactWriteItems call, and the digest of the rest."""
    if environ.get("HTTP_X_AMZ_TARGET", "") != "DynamoDB_20120810.TransactWriteItems":
        return None, None
    try:
        request = json.loads(body)
    except ValueError:
        return None, None
    token = request.pop("ClientRequestToken", None)
    if not token:
        return None, None
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    return token, digest


def ses_messages(environ, start_response):
    """The emails moto's SES (v1 and v2) accepted, for the tests to read back."""
    to = parse_qs(environ.get("QUERY_STRING", "")).get("to", [None])[0]
    found = []
    for by_region in list(ses_backends.values()):
        for backend in list(by_region.values()):
            for m in backend.sent_messages:
                record = {"id": m.id, "source": m.source, "destinations": m.destinations}
                if hasattr(m, "raw_data"):
                    record["raw_data"] = m.raw_data
                    addresses = m.destinations
                else:
                    record["subject"], record["body"] = m.subject, m.body
                    addresses = [a for each in m.destinations.values() for a in each]
                if to is None or any(a.lower() == to.lower() for a in addresses):
                    found.append(record)
    body = json.dumps(found).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def one_at_a_time(environ, start_response):
    if environ.get("PATH_INFO") == "/_test/ses/messages" and environ.get("REQUEST_METHOD") == "GET":
        with lock:
            return ses_messages(environ, start_response)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    with lock:
        token, digest = transaction_token(environ, body)
        now = time.monotonic()
        for old in [t for t, c in completed.items() if now - c[0] > IDEMPOTENCY_WINDOW_SECS]:
            del completed[old]
        if token in completed:
            _, first_digest, status, headers, answer = completed[token]
            if first_digest != digest:
                status = "400 Bad Request"
                headers = [("Content-Type", "application/x-amz-json-1.0")]
                answer = [json.dumps({
                    "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                    "message": "The request uses the same client token as a previous, but non-identical request.",
                }).encode()]
            start_response(status, headers)
            return answer
        seen = {}

        def recording_start_response(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, list(headers)
            return start_response(status, headers, exc_info)

        answer = list(moto_app(environ, recording_start_response))
        if token and seen.get("status", "").startswith("200"):
            completed[token] = (now, digest, seen["status"], seen["headers"], answer)
        return answer


if __name__ == "__main__":
    run_simple(
        sys.argv[1],
        int(sys.argv[2]),
        one_at_a_time,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
