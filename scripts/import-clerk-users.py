#!/usr/bin/env python3
"""Imports the users of a Clerk CSV user export (Dashboard: Settings, User exports) into
this service through its Backend API, passwords included as their digests, so users sign
in with the passwords they have (docs/sign-in.md, "Importing users from Clerk").

    BACKEND_API_SECRET_KEY=sk_... python3 scripts/import-clerk-users.py users.csv \\
        --url https://clerk.example.com [--dry-run]

Each row becomes `POST /v1/users` with:
- `external_id`: the user's Clerk id (so the app can map its own records);
- `first_name`, `last_name`, `username`;
- `email_address`: the primary address, then the other verified ones (addresses the
  export lists as unverified are left out: this service keeps every imported address as
  verified, and an address nobody proved would let its owner take the account);
- `phone_number`: the primary number, then the other verified ones;
- `password_digest` and `password_hasher` (bcrypt, argon2id, argon2i, pbkdf2_sha256,
  pbkdf2_sha256_django), kept as they are until the user's next sign-in replaces them
  with argon2id.

It runs again safely: a user whose address or username is already taken is reported as
existing and left alone. The secret key is read from the environment, never the command
line; no digest is ever printed. Standard library only.
"""

import argparse
import csv
import json
import os
import re
import sys
import urllib.error
import urllib.request

COLUMNS = {
    "id",
    "first_name",
    "last_name",
    "username",
    "primary_email_address",
    "primary_phone_number",
    "verified_email_addresses",
    "unverified_email_addresses",
    "verified_phone_numbers",
    "unverified_phone_numbers",
    "totp_secret",
    "password_digest",
    "password_hasher",
}


def split_list(value):
    """A cell of several values: separated by `|`, `,` or `;`."""
    return [v.strip() for v in re.split(r"[|,;]", value or "") if v.strip()]


def first_then_rest(primary, others):
    """`primary` first, then `others`, each once (addresses compared without case)."""
    out, seen = [], set()
    for v in ([primary] if primary else []) + others:
        if v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    return out


def body_of(row):
    """The `POST /v1/users` body of one row, and what of the row it leaves out."""
    cell = lambda name: (row.get(name) or "").strip()
    body = {"external_id": cell("id")} if cell("id") else {}
    for name in ("first_name", "last_name", "username"):
        if cell(name):
            body[name] = cell(name)
    emails = first_then_rest(cell("primary_email_address"), split_list(cell("verified_email_addresses")))
    if emails:
        body["email_address"] = emails
    phones = first_then_rest(cell("primary_phone_number"), split_list(cell("verified_phone_numbers")))
    if phones:
        body["phone_number"] = phones
    if cell("password_digest"):
        body["password_digest"] = cell("password_digest")
        body["password_hasher"] = cell("password_hasher")
    left_out = []
    unverified = [
        e for e in split_list(cell("unverified_email_addresses"))
        if e.lower() != cell("primary_email_address").lower()
    ]
    if unverified:
        left_out.append(f"{len(unverified)} unverified email address(es)")
    if split_list(cell("unverified_phone_numbers")):
        left_out.append("unverified phone number(s)")
    if cell("totp_secret"):
        left_out.append("a TOTP secret (second factors are not served)")
    return body, left_out


def create(url, secret_key, body):
    """(status, ClerkErrors code or None) of one create."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/users",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"authorization": f"Bearer {secret_key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, None
    except urllib.error.HTTPError as err:
        try:
            code = json.loads(err.read())["errors"][0]["code"]
        except (ValueError, KeyError, IndexError):
            code = None
        return err.code, code


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="the CSV export")
    parser.add_argument("--url", required=True, help="the service's URL (its Backend API)")
    parser.add_argument("--dry-run", action="store_true", help="read and check the file; create nothing")
    args = parser.parse_args(argv)
    secret_key = os.environ.get("BACKEND_API_SECRET_KEY", "")
    if not args.dry_run and not secret_key:
        sys.exit("set BACKEND_API_SECRET_KEY to the service's Backend API secret key")

    created = existing = failed = 0
    with open(args.file, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"id", "primary_email_address", "password_digest", "password_hasher"} - set(reader.fieldnames or [])
        if missing:
            sys.exit(f"{args.file}: not a Clerk user export (no column {', '.join(sorted(missing))})")
        unknown = set(reader.fieldnames or []) - COLUMNS
        if unknown:
            print(f"columns left out: {', '.join(sorted(unknown))}", file=sys.stderr)
        for line, row in enumerate(reader, start=2):
            body, left_out = body_of(row)
            who = body.get("external_id") or f"line {line}"
            for what in left_out:
                print(f"{who}: left out {what}", file=sys.stderr)
            if args.dry_run:
                created += 1
                continue
            status, code = create(args.url, secret_key, body)
            if status == 200:
                created += 1
            elif code == "form_identifier_exists":
                existing += 1
                print(f"{who}: exists already (its email address or username is taken)", file=sys.stderr)
            else:
                failed += 1
                print(f"{who}: not imported: {status} {code or ''}".rstrip(), file=sys.stderr)
    verb = "would be created" if args.dry_run else "created"
    print(f"{created} {verb}, {existing} existing, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
