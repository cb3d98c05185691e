"""Seeds the local server for schemathesis: users, clients and sessions for each operation
that needs one, and JWT templates. Prints KEY=value lines that schemathesis.toml reads
from the environment (tests/compat/run.sh exports them)."""

import os
import uuid

import httpx

BASE = os.environ["COMPAT_URL"]
bapi = httpx.Client(base_url=BASE, headers={"authorization": f"Bearer {os.environ['COMPAT_SECRET_KEY']}"})


def call(client: httpx.Client, method: str, path: str, **kwargs) -> dict:
    res = client.request(method, path, **kwargs)
    res.raise_for_status()
    return res.json()


def signed_in_client(sessions: int) -> tuple[str, list[str]]:
    """A browser client (the __client cookie) with `sessions` signed-in sessions."""
    fapi = httpx.Client(base_url=BASE)
    call(fapi, "POST", "/v1/client")
    ids = []
    for n in range(sessions):
        user = call(bapi, "POST", "/v1/users", json={"first_name": f"Seed{n}", "email_address": [f"seed{n}.{uuid.uuid4().hex[:8]}@example.com"]})
        ticket = call(bapi, "POST", "/v1/sign_in_tokens", json={"user_id": user["id"]})["token"]
        sign_in = call(fapi, "POST", "/v1/client/sign_ins", data={"strategy": "ticket", "ticket": ticket})
        ids.append(sign_in["response"]["created_session_id"])
    return fapi.cookies["__client"], ids


def template(name: str) -> str:
    body = {"name": name, "claims": {"aud": "schemathesis", "email": "{{user.primary_email_address}}"}}
    return call(bapi, "POST", "/v1/jwt_templates", json=body)["id"]


run = uuid.uuid4().hex[:8]  # names stay unique if the same server is seeded twice


def endpoint() -> str:
    # A loopback port nothing listens on: deliveries to it fail and are retried, harmlessly.
    return call(bapi, "POST", "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/schemathesis"})["id"]


client_token, (session_id, end_session_id, remove_session_id) = signed_in_client(3)
signout_client_token, _ = signed_in_client(1)
_, (revoke_session_id,) = signed_in_client(1)
user_id = call(bapi, "GET", f"/v1/sessions/{session_id}")["user_id"]
# Users of their own for banning and deleting, each signed in once.
_, (ban_session_id,) = signed_in_client(1)
_, (delete_session_id,) = signed_in_client(1)

seeds = {
    "CLIENT_TOKEN": client_token,
    "SESSION_ID": session_id,
    "END_SESSION_ID": end_session_id,
    "REMOVE_SESSION_ID": remove_session_id,
    "SIGNOUT_CLIENT_TOKEN": signout_client_token,
    "REVOKE_SESSION_ID": revoke_session_id,
    "USER_ID": user_id,
    "BAN_USER_ID": call(bapi, "GET", f"/v1/sessions/{ban_session_id}")["user_id"],
    "DELETE_USER_ID": call(bapi, "GET", f"/v1/sessions/{delete_session_id}")["user_id"],
    "TEMPLATE_NAME": f"schemathesis-{run}",
    "TEMPLATE_ID": template(f"schemathesis-{run}"),
    "PATCH_TEMPLATE_ID": template(f"schemathesis-patched-{run}"),
    "DELETE_TEMPLATE_ID": template(f"schemathesis-deleted-{run}"),
    "ENDPOINT_ID": endpoint(),
    "DELETE_ENDPOINT_ID": endpoint(),
}
for key, value in seeds.items():
    print(f"{key}={value}")
