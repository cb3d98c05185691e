"""scripts/import-clerk-users.py against the service: a Clerk CSV user export with bcrypt,
argon2id and PBKDF2 digests comes in through the Backend API, each user signs in over the
Frontend API with the password it had, and a second run creates nothing."""

import csv
import os
import subprocess
import sys
import tempfile
import unittest
import uuid
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

BASE = os.environ["COMPAT_URL"]
SECRET_KEY = os.environ["COMPAT_SECRET_KEY"]
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "import-clerk-users.py"

COLUMNS = [
    "id", "first_name", "last_name", "username", "primary_email_address", "primary_phone_number",
    "verified_email_addresses", "unverified_email_addresses", "verified_phone_numbers",
    "unverified_phone_numbers", "totp_secret", "password_digest", "password_hasher",
]


def argon2id_digest(password: str) -> str:
    kdf = Argon2id(salt=os.urandom(16), length=32, iterations=2, lanes=1, memory_cost=19456)
    return kdf.derive_phc_encoded(password.encode())


def run(csv_path: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), csv_path, "--url", BASE, *extra],
        env={**os.environ, "BACKEND_API_SECRET_KEY": SECRET_KEY},
        capture_output=True, text=True, timeout=120,
    )


def sign_in(identifier: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=BASE) as fapi:
        return fapi.post(
            "/v1/client/sign_ins?_is_native=1",
            data={"identifier": identifier, "password": password},
        )


class ImportClerkUsers(unittest.TestCase):
    def test_an_export_imports_once_and_its_users_sign_in_with_their_passwords(self):
        tag = uuid.uuid4().hex[:8]
        users = [
            # bcrypt of "U*U" (a published test vector).
            (f"user_bc{tag}", f"bc-{tag}@example.com", "U*U",
             "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "bcrypt"),
            (f"user_ar{tag}", f"ar-{tag}@example.com", "argon-pass-42",
             argon2id_digest("argon-pass-42"), "argon2id"),
            # PBKDF2-SHA256 of "migrated-passphrase-42", 1000 iterations, salt "importedsalt".
            (f"user_pb{tag}", f"pb-{tag}@example.com", "migrated-passphrase-42",
             "pbkdf2_sha256$1000$aW1wb3J0ZWRzYWx0$4z2S90ScIgyoGpmrl+IycF5yJGPypJBHQckLGnJayW0=",
             "pbkdf2_sha256"),
        ]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "users.csv")
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=COLUMNS)
                w.writeheader()
                for clerk_id, email, _, digest, hasher in users:
                    w.writerow({
                        "id": clerk_id, "first_name": "Imported", "primary_email_address": email,
                        "verified_email_addresses": email,
                        "unverified_email_addresses": f"other-{email}",
                        "password_digest": digest, "password_hasher": hasher,
                    })
            dry = run(path, "--dry-run")
            self.assertEqual(dry.returncode, 0, dry.stderr)
            self.assertIn("3 would be created", dry.stdout)

            first = run(path)
            self.assertEqual(first.returncode, 0, first.stderr)
            self.assertIn("3 created, 0 existing, 0 failed", first.stdout)
            self.assertIn("left out 1 unverified email address", first.stderr)
            for _, _, _, digest, _ in users:
                self.assertNotIn(digest, first.stdout + first.stderr)

            again = run(path)
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertIn("0 created, 3 existing, 0 failed", again.stdout)

        for clerk_id, email, password, _, hasher in users:
            resp = sign_in(email, password)
            self.assertEqual(resp.status_code, 200, f"{hasher}: {resp.text}")
            self.assertEqual(resp.json()["response"]["status"], "complete", hasher)
            wrong = sign_in(email, password + "x")
            self.assertEqual(wrong.status_code, 422, hasher)
            self.assertEqual(wrong.json()["errors"][0]["code"], "form_password_incorrect")
            # The Clerk id is the user's external id; the unverified address stayed out.
            with httpx.Client(base_url=BASE, headers={"authorization": f"Bearer {SECRET_KEY}"}) as bapi:
                uid = resp.json()["response"]["created_session_id"]
                session = bapi.get(f"/v1/sessions/{uid}").json()
                user = bapi.get(f"/v1/users/{session['user_id']}").json()
            self.assertEqual(user["external_id"], clerk_id)
            self.assertEqual([e["email_address"] for e in user["email_addresses"]], [email])

    def test_a_file_that_is_not_an_export_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "other.csv")
            Path(path).write_text("name,email\nada,ada@example.com\n")
            result = run(path)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("not a Clerk user export", result.stderr)


if __name__ == "__main__":
    unittest.main()
