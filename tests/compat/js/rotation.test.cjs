// Key rotation as Clerk's own SDKs see it: @clerk/backend's verifyToken (remote JWKS through
// `apiUrl`) and clerk-js (react-native build, native client-token flow) across rotations of
// the session signing keys and the client-token secrets. Run with `node -C react-native`.
//
// This suite rotates keys, so it has a local-api of its own (run.sh: COMPAT_ROTATION_URL),
// started with JWKS_CACHE_WINDOW_SECONDS=2 and SESSION_TOKEN_LIFETIME_SECONDS=30: a new key
// signs 2 s after the rotation, and the key it replaces is unpublished 30 s (token lifetime)
// + 5 s (verifier clock skew) + 1 s (refresh interval) after that, so the whole lifecycle of
// a key fits in about 40 s. The tests run in order and each builds on the keyring the one
// before left; the times to wait for come from the keyring itself (GET /v1/instance/keys).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

// The main compat server (COMPAT_URL) is another instance: its client tokens are foreign
// here. server.cjs reads COMPAT_URL when required, so point it at this suite's server first.
const otherBase = process.env.COMPAT_URL;
if (!process.env.COMPAT_ROTATION_URL) {
  throw new Error('COMPAT_ROTATION_URL must be set (tests/compat/run.sh starts a local-api for this suite)');
}
process.env.COMPAT_URL = process.env.COMPAT_ROTATION_URL;
const { base, secretKey, publishableKey, appOrigin, bapi, browserSignIn, userWithTicket, decodeJwt, later, refusal } = require('./server.cjs');
const { verifyToken } = require('@clerk/backend');

// clerk-js reads window.location when it signs out; React Native has a window object too.
globalThis.window = globalThis;
const { Clerk } = require('@clerk/clerk-js');

process.env.CLERK_TELEMETRY_DISABLED = '1';
const remote = { secretKey, apiUrl: base, skipJwksCache: true };

// What the server was started with (run.sh), and what follows from it (the keyring's doc).
const WINDOW_MS = 2_000;
const SIGNING_RETIRE_MS = 30_000 + 5_000 + 1_000; // token lifetime + verifier skew + refresh
const SESSION_CAT = 'cl_B7d4PD111AAA';
const TEMPLATE_CAT = 'cl_B7d4PD222AAA';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `at` (ms since the epoch, the server's clock: same machine) is `margin` ms past. */
async function until(at, margin = 300) {
  const wait = at + margin - Date.now();
  if (wait > 0) await sleep(wait);
}

const instanceKeys = () => bapi('GET', '/v1/instance/keys');
const rotate = (body) => bapi('POST', '/v1/instance/keys/rotate', body);
const inState = (keys, state) => keys.filter((k) => k.state === state);
/** The one key of `keys` in `state`. */
function only(keys, state) {
  const found = inState(keys, state);
  assert.equal(found.length, 1, `one ${state} key in ${JSON.stringify(keys)}`);
  return found[0];
}

/**
 * The kids both JWKS documents publish (the Frontend API's, public, and the Backend API's,
 * where verifyToken reads them), checked to be the same, and the public one's Cache-Control.
 */
async function published() {
  const res = await fetch(`${base}/.well-known/jwks.json`);
  assert.equal(res.status, 200);
  const fapi = (await res.json()).keys.map((k) => k.kid).sort();
  const backend = (await bapi('GET', '/v1/jwks')).keys.map((k) => k.kid).sort();
  assert.deepEqual(backend, fapi, 'GET /v1/jwks and /.well-known/jwks.json publish the same keys');
  return { kids: fapi, cacheControl: res.headers.get('cache-control') };
}

const sessionToken = async (sessionId) => (await bapi('POST', `/v1/sessions/${sessionId}/tokens`)).jwt;
const templateToken = async (sessionId, name) => (await bapi('POST', `/v1/sessions/${sessionId}/tokens/${name}`, {})).jwt;

// ---------------------------------------------------------------------------------------
// @clerk/backend verifyToken across a rotation of the session signing key.

const signing = {}; // what the signing-key scenario carries from one step to the next
const templateName = `compat-rotation-${Date.now()}`;

test('before any rotation: one key of each kind; tokens carry its kid and verify', async () => {
  const keys = await instanceKeys();
  assert.equal(keys.object, 'instance_keys');
  const key = only(keys.session_signing_keys, 'current');
  assert.equal(keys.session_signing_keys.length, 1);
  assert.equal(keys.client_token_secrets.length, 1);
  only(keys.client_token_secrets, 'current');
  signing.old = key.kid;

  const { kids, cacheControl } = await published();
  assert.deepEqual(kids, [key.kid]);
  // The window is how long verifiers may cache the JWKS: a new key is published this long
  // before it signs.
  assert.equal(cacheControl, `public, max-age=${WINDOW_MS / 1000}`);

  signing.user = await browserSignIn('Ada');
  // 30 s, the shortest lifetime a template may have: a template living longer than session
  // tokens would keep retiring keys published for its lifetime instead.
  await bapi('POST', '/v1/jwt_templates', { name: templateName, claims: { role: 'rotation' }, lifetime: 30 });
  signing.oldSession = signing.user.jwt;
  signing.oldTemplate = await templateToken(signing.user.sessionId, templateName);
  assert.deepEqual(decodeJwt(signing.oldSession).header, { alg: 'RS256', typ: 'JWT', kid: key.kid, cat: SESSION_CAT });
  assert.equal(decodeJwt(signing.oldTemplate).header.kid, key.kid);
  assert.equal(decodeJwt(signing.oldTemplate).header.cat, TEMPLATE_CAT);

  assert.equal((await verifyToken(signing.oldSession, remote)).sid, signing.user.sessionId);
  const claims = await verifyToken(signing.oldTemplate, remote);
  assert.equal(claims.sub, signing.user.user.id);
  assert.equal(claims.role, 'rotation');
});

test('a rotation publishes the next key at once; the old key signs on through the window', async () => {
  const rotated = await rotate({ keys: 'session_signing' });
  assert.equal(rotated.object, 'instance_keys');
  const old = only(rotated.session_signing_keys, 'current');
  const next = only(rotated.session_signing_keys, 'next');
  assert.equal(old.kid, signing.old);
  assert.equal(next.signs_from - next.created_at, WINDOW_MS);
  assert.equal(old.retires_at, next.signs_from);
  assert.equal(old.remove_at - old.retires_at, SIGNING_RETIRE_MS);
  // Only the signing key was asked for: the client secret stays as it was.
  assert.equal(rotated.client_token_secrets.length, 1);
  signing.next = next.kid;
  signing.schedule = { signsFrom: next.signs_from, removeAt: old.remove_at };

  // Verifiers holding a JWKS fetched just before the rotation see the next key within the
  // window; until then tokens keep the kid they already know.
  const within = await sessionToken(signing.user.sessionId);
  const mintedBy = (decodeJwt(within).payload.iat + 1) * 1000; // iat is in whole seconds
  assert.ok(mintedBy <= next.signs_from, `minted within the window (${next.signs_from - mintedBy} ms to spare)`);
  assert.equal(decodeJwt(within).header.kid, signing.old);
  assert.deepEqual((await published()).kids, [signing.old, signing.next].sort());

  // A second rotation before the next key signs would retire a key no verifier has had a
  // window to fetch.
  await assert.rejects(rotate({ keys: 'session_signing' }), /409 .*key_rotation_pending/);
});

test('past the window: new tokens carry the new kid; verifyToken accepts old and new tokens', async () => {
  await until(signing.schedule.signsFrom);
  const keys = await instanceKeys();
  assert.equal(only(keys.session_signing_keys, 'retiring').kid, signing.old);
  assert.equal(only(keys.session_signing_keys, 'current').kid, signing.next);
  assert.deepEqual((await published()).kids, [signing.old, signing.next].sort());

  const newSession = await sessionToken(signing.user.sessionId);
  const newTemplate = await templateToken(signing.user.sessionId, templateName);
  assert.equal(decodeJwt(newSession).header.kid, signing.next);
  assert.equal(decodeJwt(newTemplate).header.kid, signing.next);
  assert.equal(decodeJwt(newTemplate).header.cat, TEMPLATE_CAT);

  for (const jwt of [signing.oldSession, signing.oldTemplate, newSession, newTemplate]) {
    const claims = await verifyToken(jwt, remote);
    assert.equal(claims.sub, signing.user.user.id);
  }
});

test('once the old key is removed: gone from both JWKS documents, verifyToken refuses its tokens', async () => {
  // Every token the old key signed expires, verifier skew included, before it goes.
  for (const jwt of [signing.oldSession, signing.oldTemplate]) {
    assert.ok(decodeJwt(jwt).payload.exp * 1000 + 5_000 <= signing.schedule.removeAt, 'the key outlives its tokens');
  }
  await until(signing.schedule.removeAt, 0);
  const deadline = Date.now() + 5_000;
  let keys = await instanceKeys();
  while (keys.session_signing_keys.some((k) => k.kid === signing.old) && Date.now() < deadline) {
    await sleep(200);
    keys = await instanceKeys();
  }
  assert.deepEqual(keys.session_signing_keys.map((k) => [k.kid, k.state]), [[signing.next, 'current']]);
  assert.deepEqual((await published()).kids, [signing.next]);

  // @clerk/backend merges every JWKS it fetches into a cache and, with skipJwksCache, drops
  // no kid from it: this process still holds the old key, and refuses the old tokens for
  // their expiry. A verifier without the old key (a new process, or this one once its
  // 5-minute cache has lapsed) finds no key for the kid: that is the removal itself.
  const old = [signing.oldSession, signing.oldTemplate];
  for (const jwt of old) assert.equal(await refusal(jwt, remote), 'token-expired');
  const cached = { secretKey, apiUrl: base }; // a lapsed cache is emptied, then fetched again
  for (const jwt of old) assert.equal(await later(5 * 60_000, () => refusal(jwt, cached)), 'jwk-kid-mismatch');
  // The new key's tokens still verify, through the same cache.
  const claims = await verifyToken(await sessionToken(signing.user.sessionId), remote);
  assert.equal(claims.sid, signing.user.sessionId);
});

// ---------------------------------------------------------------------------------------
// clerk-js (react-native build) across rotations of both kinds of key.

const clerk = new Clerk(publishableKey, { proxyUrl: base });
let clientJwt = '';
const seen = []; // every request clerk-js sent: "METHOD path"

// What @clerk/expo does: no cookies, `_is_native=1`, the client token in Authorization,
// taken from each response's Authorization header (where a re-signed token comes back).
clerk.__internal_onBeforeRequest(async (req) => {
  req.credentials = 'omit';
  req.url.searchParams.append('_is_native', '1');
  req.headers.set('authorization', clientJwt);
  seen.push(`${req.method} ${req.url.pathname}`);
});
clerk.__internal_onAfterResponse(async (_req, res) => {
  const a = res?.headers?.get('authorization');
  if (a) clientJwt = a;
});

/** GET /v1/client the native way with `token`: the status, the client and any new token. */
async function nativeClient(token) {
  const res = await fetch(`${base}/v1/client?_is_native=1`, { headers: { authorization: token } });
  const body = await res.json();
  return { status: res.status, client: body.response, token: res.headers.get('authorization') };
}

const native = {}; // what the clerk-js scenario carries from one step to the next

test('clerk-js signs in with a ticket; its client token names the current client secret', async () => {
  await clerk.load({ standardBrowser: false, telemetry: false });
  const { user, ticket } = await userWithTicket('Grace');
  const signIn = await clerk.client.signIn.create({ strategy: 'ticket', ticket });
  assert.equal(signIn.status, 'complete');
  await clerk.setActive({ session: signIn.createdSessionId });
  native.user = user;
  native.sessionId = signIn.createdSessionId;
  assert.equal(clerk.session.id, native.sessionId);

  const keys = await instanceKeys();
  const { header, payload } = decodeJwt(clientJwt);
  assert.equal(header.alg, 'HS256');
  assert.equal(header.kid, only(keys.client_token_secrets, 'current').kid);
  assert.equal(payload.id, clerk.client.id);
  native.clientId = payload.id;
});

test('rotate all keys: past the window clerk-js is still signed in, on the new keys', async () => {
  const held = clientJwt;
  const rotated = await rotate({ keys: 'all' });
  const nextSigning = only(rotated.session_signing_keys, 'next');
  const nextSecret = only(rotated.client_token_secrets, 'next');
  await until(Math.max(nextSigning.signs_from, nextSecret.signs_from));

  // The token request carries the client token signed with the secret that now retires:
  // the answer hands it back re-signed with the new one, in Authorization.
  const before = seen.length;
  const jwt = await clerk.session.getToken({ skipCache: true });
  assert.ok(seen.slice(before).includes(`POST /v1/client/sessions/${native.sessionId}/tokens`), seen.slice(before).join(', '));
  assert.equal(decodeJwt(jwt).header.kid, nextSigning.kid);
  const claims = await verifyToken(jwt, remote);
  assert.equal(claims.sid, native.sessionId);
  assert.equal(claims.sub, native.user.id);

  assert.notEqual(clientJwt, held);
  const renewed = decodeJwt(clientJwt);
  assert.equal(renewed.header.kid, nextSecret.kid);
  const old = decodeJwt(held).payload;
  assert.deepEqual({ ...renewed.payload, iat: 0 }, { ...old, iat: 0 }, 'the same client token, signed again');

  // A reload (GET /v1/client) with the renewed token: the same client, still signed in.
  await clerk.client.reload();
  assert.equal(clerk.client.id, native.clientId);
  assert.deepEqual(clerk.client.sessions.map((s) => [s.id, s.status]), [[native.sessionId, 'active']]);
  assert.equal(clerk.session?.id, native.sessionId);
  assert.equal(clerk.session.status, 'active');
  assert.equal(clerk.user.id, native.user.id);
  const held2 = await nativeClient(clientJwt);
  assert.equal(held2.status, 200);
  assert.equal(held2.client.id, native.clientId);
  assert.equal(held2.client.last_active_session_id, native.sessionId);
  assert.equal(held2.token, null, 'a token on the current secret is not re-signed');

  // The old token verifies for as long as the retiring secret does (a client-token
  // lifetime), so a copy an app has not replaced yet still works, and is renewed too.
  const stale = await nativeClient(held);
  assert.equal(stale.status, 200);
  assert.equal(stale.client.id, native.clientId);
  assert.equal(decodeJwt(stale.token).header.kid, nextSecret.kid);
  native.secret = nextSecret.kid;
});

test('emergency rotation of the client secret: held tokens stop verifying; the user starts over signed out', async () => {
  const held = clientJwt;
  const keysBefore = await instanceKeys();
  const rotated = await rotate({ keys: 'client_token', emergency: true });
  // Emergency: the new secret signs at once and every other one is gone at once.
  assert.equal(rotated.client_token_secrets.length, 1);
  const secret = only(rotated.client_token_secrets, 'current');
  assert.notEqual(secret.kid, native.secret);
  assert.deepEqual(rotated.session_signing_keys, keysBefore.session_signing_keys, 'the signing keys are left alone');

  // An endpoint that needs the client refuses the token: the user cannot keep the session.
  const res = await fetch(`${base}/v1/client/sessions/${native.sessionId}/tokens?_is_native=1`, {
    method: 'POST',
    headers: { authorization: held },
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).errors[0].code, 'authentication_invalid');

  // But GET /v1/client, what an app asks on start, is no lockout: a new, empty client and a
  // token for it on the new secret.
  const fresh = await nativeClient(held);
  assert.equal(fresh.status, 200);
  assert.ok(fresh.client, 'a new client');
  assert.notEqual(fresh.client.id, native.clientId);
  assert.deepEqual(fresh.client.sessions, []);
  assert.equal(fresh.client.last_active_session_id, null);
  assert.equal(decodeJwt(fresh.token).header.kid, secret.kid);
  assert.equal(decodeJwt(fresh.token).payload.id, fresh.client.id);

  // What the user sees in clerk-js: its next request for a token fails with 401, which
  // clerk-js handles itself (handleUnauthenticated): it fetches the client, gets the new
  // empty one from GET /v1/client, and signs out. The app shows a signed-out user.
  const sent = seen.length;
  await assert.rejects(
    clerk.session.getToken({ skipCache: true }),
    (err) => err.status === 401 && err.errors[0].code === 'authentication_invalid',
  );
  for (const deadline = Date.now() + 2_000; clerk.session && Date.now() < deadline; ) await sleep(50);
  assert.deepEqual(seen.slice(sent), [`POST /v1/client/sessions/${native.sessionId}/tokens`, 'GET /v1/client']);
  assert.equal(clerk.session ?? null, null);
  assert.equal(clerk.user ?? null, null);
  assert.notEqual(clerk.client.id, native.clientId);
  assert.deepEqual(clerk.client.sessions, []);
  assert.equal(decodeJwt(clientJwt).header.kid, secret.kid);
  assert.equal(decodeJwt(clientJwt).payload.id, clerk.client.id);
  // The session itself is not ended by the rotation; it is only out of reach of any client
  // token (it expires, or the Backend API revokes it).
  assert.equal((await bapi('GET', `/v1/sessions/${native.sessionId}`)).status, 'active');

  // And the user can sign in again on the new client.
  const { ticket } = await userWithTicket('Grace');
  const signIn = await clerk.client.signIn.create({ strategy: 'ticket', ticket });
  assert.equal(signIn.status, 'complete');
  await clerk.setActive({ session: signIn.createdSessionId });
  assert.equal(clerk.session.id, signIn.createdSessionId);
});

// ---------------------------------------------------------------------------------------
// Client tokens this instance never issued.

/** An HS256 JWT shaped like a client token, naming this instance's current secret but signed with another. */
async function madeUpClientToken() {
  const kid = only((await instanceKeys()).client_token_secrets, 'current').kid;
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${part({ typ: 'JWT', alg: 'HS256', kid })}.${part({ id: 'client_madeup', rotating_token: 'x', iat: now, exp: now + 3600 })}`;
  return `${input}.${crypto.createHmac('sha256', crypto.randomBytes(32)).update(input).digest('base64url')}`;
}

/** A client token the other compat server issued (another instance: another keyring). */
async function otherInstanceClientToken() {
  const res = await fetch(`${otherBase}/v1/client?_is_native=1`, { method: 'POST' });
  assert.equal(res.status, 200);
  const token = res.headers.get('authorization');
  assert.ok(token, 'the other server issued a client token');
  return token;
}

test('a foreign client token (native): GET /v1/client answers a new client and a new token', async () => {
  const foreign = { 'another instance': await otherInstanceClientToken(), 'a made-up one': await madeUpClientToken() };
  const current = only((await instanceKeys()).client_token_secrets, 'current').kid;
  for (const [what, token] of Object.entries(foreign)) {
    const answer = await nativeClient(token);
    assert.equal(answer.status, 200, what);
    assert.ok(answer.client?.id, `${what}: a new client`);
    assert.ok(answer.token, `${what}: a new token in Authorization`);
    assert.equal(decodeJwt(answer.token).header.kid, current, what);
    assert.equal(decodeJwt(answer.token).payload.id, answer.client.id, what);
    // The new token is one this instance holds to: it finds the same client.
    assert.equal((await nativeClient(answer.token)).client.id, answer.client.id, what);
  }
});

test('a foreign __client cookie (browser): GET /v1/client sets a fresh cookie; endpoints needing a client clear it', async () => {
  const foreign = await otherInstanceClientToken();
  const res = await fetch(`${base}/v1/client`, { headers: { origin: appOrigin, cookie: `__client=${foreign}` } });
  assert.equal(res.status, 200);
  const client = (await res.json()).response;
  assert.ok(client?.id, 'a new client');
  const set = res.headers.getSetCookie().find((c) => c.startsWith('__client='));
  assert.ok(set, 'a __client cookie is set');
  const token = set.split(';')[0].slice('__client='.length);
  assert.ok(token, 'the cookie carries a fresh token');
  assert.equal(decodeJwt(token).header.kid, only((await instanceKeys()).client_token_secrets, 'current').kid);
  assert.equal(decodeJwt(token).payload.id, client.id);

  // An endpoint that needs a client answers 401 and clears the cookie (a browser cannot
  // clear an HttpOnly cookie itself).
  const needs = await fetch(`${base}/v1/client/sessions`, {
    method: 'DELETE',
    headers: { origin: appOrigin, cookie: `__client=${foreign}` },
  });
  assert.equal(needs.status, 401);
  const cleared = needs.headers.getSetCookie().find((c) => c.startsWith('__client='));
  assert.match(cleared ?? '', /^__client=;.*Max-Age=0/);
});
