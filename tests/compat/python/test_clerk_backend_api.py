"""Clerk's Python SDK (clerk-backend-api) against the service: the Backend API calls through
`server_url` ending in `/v1`, and `verify_token` against the served JWKS."""

import os
import unittest
import uuid
from datetime import datetime
from unittest import mock

import httpx
from clerk_backend_api import Clerk, models
from clerk_backend_api.security import verify_token
from clerk_backend_api.security.types import (
    TokenVerificationError,
    TokenVerificationErrorReason,
    VerifyTokenOptions,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import jwt as pyjwt

BASE = os.environ["COMPAT_URL"]
SECRET_KEY = os.environ["COMPAT_SECRET_KEY"]
APP_ORIGIN = os.environ.get("COMPAT_APP_ORIGIN", "http://app.test")

sdk = Clerk(bearer_auth=SECRET_KEY, server_url=f"{BASE}/v1")
remote = dict(secret_key=SECRET_KEY, api_url=BASE)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def browser_sign_in(first_name: str):
    """A user (through the SDK), then a browser-style ticket sign-in over the Frontend API.
    Returns (user, session id, session token minted with Origin, so it carries azp)."""
    user = sdk.users.create(first_name=first_name, email_address=[f"{unique(first_name.lower())}@example.com"])
    ticket = sdk.sign_in_tokens.create(request={"user_id": user.id}).token
    with httpx.Client(base_url=BASE, headers={"origin": APP_ORIGIN}) as fapi:
        fapi.post("/v1/client").raise_for_status()
        sign_in = fapi.post("/v1/client/sign_ins", data={"strategy": "ticket", "ticket": ticket})
        sign_in.raise_for_status()
        session_id = sign_in.json()["response"]["created_session_id"]
        token = fapi.post(f"/v1/client/sessions/{session_id}/tokens")
        token.raise_for_status()
    return user, session_id, token.json()["jwt"]


def public_key_pem() -> str:
    jwks = sdk.jwks.get_jwks()
    key = pyjwt.PyJWK.from_dict(jwks.keys[0].model_dump(exclude_none=True)).key
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class BackendApi(unittest.TestCase):
    def test_users_and_sign_in_tokens(self):
        email = f"{unique('alan')}@example.com"
        user = sdk.users.create(first_name="Alan", last_name="Turing", email_address=[email], external_id="ext-alan")
        self.assertTrue(user.id.startswith("user_"))
        self.assertEqual(user.first_name, "Alan")
        self.assertEqual(user.external_id, "ext-alan")
        self.assertEqual(user.email_addresses[0].email_address, email)
        self.assertEqual(user.primary_email_address_id, user.email_addresses[0].id)
        self.assertEqual(sdk.users.get(user_id=user.id).last_name, "Turing")

        token = sdk.sign_in_tokens.create(request={"user_id": user.id, "expires_in_seconds": 600})
        self.assertEqual(token.user_id, user.id)
        self.assertEqual(token.status, models.SignInTokenStatus.PENDING)
        self.assertTrue(token.token)

        with self.assertRaises(models.ClerkErrors) as missing:
            sdk.users.get(user_id="user_doesnotexist")
        self.assertEqual(missing.exception.data.errors[0].code, "resource_not_found")

    def test_sessions_list_get_tokens_revoke(self):
        user, session_id, _ = browser_sign_in("Katherine")
        # This SDK sends limit/offset and expects a bare array (the other list style).
        listed = sdk.sessions.list(user_id=user.id, status=models.QueryParamStatus.ACTIVE)
        self.assertEqual([s.id for s in listed], [session_id])
        session = sdk.sessions.get(session_id=session_id)
        self.assertEqual(session.user_id, user.id)
        self.assertEqual(session.status, models.Status.ACTIVE)

        token = sdk.sessions.create_token(session_id=session_id)
        claims = verify_token(token.jwt, VerifyTokenOptions(**remote))
        self.assertEqual(claims["sid"], session_id)
        self.assertEqual(claims["sub"], user.id)

        # The SDK drops template claims on create (its claims model has no fields), so the
        # template's claims are set through the Backend API directly.
        name = unique("compat-py")
        httpx.post(
            f"{BASE}/v1/jwt_templates",
            headers={"authorization": f"Bearer {SECRET_KEY}"},
            json={"name": name, "claims": {"tier": "gold", "given": "{{user.first_name}}"}},
        ).raise_for_status()
        templated = sdk.sessions.create_token_from_template(session_id=session_id, template_name=name, expires_in_seconds=120)
        tclaims = verify_token(templated.jwt, VerifyTokenOptions(**remote))
        self.assertEqual(tclaims["tier"], "gold")
        self.assertEqual(tclaims["given"], "Katherine")
        self.assertEqual(tclaims["exp"] - tclaims["iat"], 120)

        revoked = sdk.sessions.revoke(session_id=session_id)
        self.assertEqual(revoked.status, models.Status.REVOKED)
        self.assertEqual(sdk.sessions.list(user_id=user.id, status=models.QueryParamStatus.ACTIVE), [])
        with self.assertRaises(models.ClerkErrors):
            sdk.sessions.create_token(session_id=session_id)

    def test_jwt_templates(self):
        name = unique("compat-py-tpl")
        created = sdk.jwt_templates.create(request={"name": name, "claims": {}, "lifetime": 90, "allowed_clock_skew": 7})
        self.assertTrue(created.id.startswith("jtmp_"))
        self.assertEqual(created.lifetime, 90)
        self.assertEqual(created.allowed_clock_skew, 7)
        self.assertIn(created.id, [t.id for t in sdk.jwt_templates.list()])
        self.assertEqual(sdk.jwt_templates.get(template_id=created.id).name, name)
        updated = sdk.jwt_templates.update(template_id=created.id, name=name, claims={}, lifetime=45)
        self.assertEqual(updated.lifetime, 45)
        deleted = sdk.jwt_templates.delete(template_id=created.id)
        self.assertTrue(deleted.deleted)
        with self.assertRaises(models.ClerkErrors):
            sdk.jwt_templates.get(template_id=created.id)


class VerifyToken(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.user, cls.session_id, cls.jwt = browser_sign_in("Hedy")

    def test_remote_jwks_and_pem(self):
        for options in (VerifyTokenOptions(**remote), VerifyTokenOptions(jwt_key=public_key_pem())):
            claims = verify_token(self.jwt, options)
            self.assertEqual(claims["sub"], self.user.id)
            self.assertEqual(claims["sid"], self.session_id)

    def test_authorized_parties(self):
        ok = verify_token(self.jwt, VerifyTokenOptions(**remote, authorized_parties=[APP_ORIGIN]))
        self.assertEqual(ok["azp"], APP_ORIGIN)
        with self.assertRaises(TokenVerificationError) as wrong:
            verify_token(self.jwt, VerifyTokenOptions(**remote, authorized_parties=["https://evil.example"]))
        self.assertEqual(wrong.exception.reason, TokenVerificationErrorReason.TOKEN_INVALID_AUTHORIZED_PARTIES)

    def test_another_key_is_refused(self):
        header = pyjwt.get_unverified_header(self.jwt)
        claims = pyjwt.decode(self.jwt, options={"verify_signature": False})
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = pyjwt.encode(claims, other, algorithm="RS256", headers={"kid": header["kid"]})
        with self.assertRaises(TokenVerificationError):
            verify_token(forged, VerifyTokenOptions(**remote))

    def test_expired_token_is_refused(self):
        # Moves the verifier's clock (PyJWT reads datetime.now) past exp rather than waiting.
        exp = pyjwt.decode(self.jwt, options={"verify_signature": False})["exp"]

        class Later(datetime):
            @classmethod
            def now(cls, tz=None):
                return datetime.fromtimestamp(exp + 60, tz=tz)

        with mock.patch.object(pyjwt.api_jwt, "datetime", Later):
            with self.assertRaises(TokenVerificationError) as expired:
                verify_token(self.jwt, VerifyTokenOptions(**remote))
        self.assertEqual(expired.exception.reason, TokenVerificationErrorReason.TOKEN_EXPIRED)

if __name__ == "__main__":
    unittest.main()
