"""moto's server for the test command, handling one request at a time.

moto checks a transaction's conditions and then applies its writes without a lock, so two
concurrent TransactWriteItems could both pass the same condition, which DynamoDB never
allows. Race tests (two sign-ins with one ticket) then fail on moto, not on the store.
A lock around every request makes each call atomic, as it is on DynamoDB; connections are
still accepted concurrently.

Usage: python scripts/moto_server.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

moto_app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def one_at_a_time(environ, start_response):
    with lock:
        return list(moto_app(environ, start_response))


if __name__ == "__main__":
    run_simple(
        sys.argv[1],
        int(sys.argv[2]),
        one_at_a_time,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
