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


def one_at_a_time(environ, start_response):
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
