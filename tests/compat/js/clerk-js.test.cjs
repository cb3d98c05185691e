// clerk-js (its react-native build, as @clerk/expo uses it) driving the Frontend API with the
// native client-token flow. Run with `node -C react-native` so `@clerk/clerk-js` resolves to
// dist/clerk.native.js. After every step the state clerk-js reports is compared with what the
// server holds (Backend API reads and the client as the server returns it).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { base, publishableKey, bapi, userWithTicket, decodeJwt } = require('./server.cjs');

// clerk-js reads window.location when it signs out; React Native has a window object too.
globalThis.window = globalThis;
const { Clerk } = require('@clerk/clerk-js');

const clerk = new Clerk(publishableKey, { proxyUrl: base });
let clientJwt = '';
const seen = []; // every request clerk-js sent: "METHOD path"

// What @clerk/expo does: no cookies, `_is_native=1`, the client token in Authorization,
// taken from each response's Authorization header.
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

async function jwks() {
  const res = await fetch(`${base}/.well-known/jwks.json`);
  return (await res.json()).keys;
}

/** Verifies an RS256 JWT against the served JWKS and returns its claims. */
async function verified(jwt) {
  const { header, payload } = decodeJwt(jwt);
  assert.equal(header.alg, 'RS256');
  const jwk = (await jwks()).find((k) => k.kid === header.kid);
  assert.ok(jwk, 'the token kid is in the JWKS');
  const [h, p, s] = jwt.split('.');
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), crypto.createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  assert.ok(ok, 'signature verifies');
  return payload;
}

/** The client as the server holds it (GET /v1/client with the same client token). */
async function serverClient() {
  const res = await fetch(`${base}/v1/client?_is_native=1`, { headers: { authorization: clientJwt } });
  assert.equal(res.status, 200);
  return (await res.json()).response;
}

async function serverSession(id) {
  return bapi('GET', `/v1/sessions/${id}`);
}

const state = {};
const templateName = `compat-js-${Date.now()}`;

/** Ids of the sessions clerk-js holds as active. */
const activeIds = () => clerk.client.sessions.filter((s) => s.status === 'active').map((s) => s.id);

test('load() fetches the environment and a client', async () => {
  await clerk.load({ standardBrowser: false, telemetry: false });
  assert.equal(clerk.loaded, true);
  assert.ok(seen.includes('GET /v1/environment'), seen.join(', '));
  assert.ok(seen.includes('GET /v1/client'), seen.join(', '));
  assert.equal(clerk.session ?? null, null);
});

test('sign in with a Backend API ticket, then setActive', async () => {
  const { user, ticket } = await userWithTicket('Ada');
  state.ada = user;
  const signIn = await clerk.client.signIn.create({ strategy: 'ticket', ticket });
  assert.equal(signIn.status, 'complete');
  assert.ok(signIn.createdSessionId);
  assert.ok(clientJwt, 'the server handed the native client a token');
  await clerk.setActive({ session: signIn.createdSessionId });
  state.first = signIn.createdSessionId;

  assert.equal(clerk.session.id, state.first);
  assert.equal(clerk.session.status, 'active');
  assert.equal(clerk.user.id, user.id);
  assert.equal(clerk.user.firstName, 'Ada');
  const held = await serverSession(state.first);
  assert.equal(held.status, 'active');
  assert.equal(held.user_id, user.id);
  assert.equal((await serverClient()).last_active_session_id, state.first);
});

test('getToken() returns a session token the server signed for this session', async () => {
  const before = seen.length;
  const jwt = await clerk.session.getToken();
  // Served from the session's last_active_token, which the sign-in answer carried.
  assert.deepEqual(seen.slice(before).filter((r) => r.includes('/tokens')), []);
  assert.equal(jwt, clerk.session.lastActiveToken.getRawString());
  const claims = await verified(jwt);
  assert.equal(claims.sid, state.first);
  assert.equal(claims.sub, state.ada.id);
  assert.equal(claims.iss, base);
  assert.ok(claims.exp > claims.iat);
  state.firstToken = jwt;
});

test('getToken({ skipCache: true }) mints a fresh token over the network', async () => {
  const before = seen.length;
  const jwt = await clerk.session.getToken({ skipCache: true });
  assert.ok(seen.slice(before).includes(`POST /v1/client/sessions/${state.first}/tokens`), seen.slice(before).join(', '));
  const claims = await verified(jwt);
  assert.equal(claims.sid, state.first);
  assert.equal(claims.sub, state.ada.id);
});

test('getToken({ template }) mints a template token with the template claims', async () => {
  await bapi('POST', '/v1/jwt_templates', {
    name: templateName,
    claims: { aud: 'compat', email: '{{user.primary_email_address}}', name: '{{user.first_name}}' },
    lifetime: 120,
  });
  const jwt = await clerk.session.getToken({ template: templateName });
  const claims = await verified(jwt);
  assert.equal(claims.sub, state.ada.id);
  assert.equal(claims.sid, undefined, 'template tokens carry no sid (Clerk default claims)');
  assert.ok(claims.jti);
  assert.equal(claims.aud, 'compat');
  assert.equal(claims.name, 'Ada');
  assert.equal(claims.email, state.ada.email_addresses[0].email_address);
  assert.equal(claims.exp - claims.iat, 120);
});

test('session.touch() keeps the session active and refreshes last_active_at', async () => {
  const before = (await serverSession(state.first)).last_active_at;
  await new Promise((r) => setTimeout(r, 5));
  await clerk.session.touch();
  const held = await serverSession(state.first);
  assert.equal(held.status, 'active');
  assert.ok(held.last_active_at >= before);
  assert.equal(clerk.session.status, 'active');
  assert.equal(clerk.session.lastActiveAt.getTime(), held.last_active_at);
});

test('a second sign-in on the same client: two sessions, setActive between them', async () => {
  const { user, ticket } = await userWithTicket('Grace');
  state.grace = user;
  const signIn = await clerk.client.signIn.create({ strategy: 'ticket', ticket });
  assert.equal(signIn.status, 'complete');
  state.second = signIn.createdSessionId;
  await clerk.setActive({ session: state.second });
  assert.equal(clerk.session.id, state.second);
  assert.equal(clerk.user.id, user.id);
  assert.deepEqual(clerk.client.sessions.map((s) => s.id).sort(), [state.first, state.second].sort());
  assert.equal((await serverClient()).last_active_session_id, state.second);
  const claims = await verified(await clerk.session.getToken({ skipCache: true }));
  assert.equal(claims.sid, state.second);
  assert.equal(claims.sub, user.id);

  await clerk.setActive({ session: state.first });
  assert.equal(clerk.session.id, state.first);
  assert.equal(clerk.user.id, state.ada.id);
  assert.equal((await serverClient()).last_active_session_id, state.first);
});

test('session.end() ends the active session on the server and in clerk-js', async () => {
  const session = clerk.client.sessions.find((s) => s.id === state.first);
  await session.end();
  const held = await serverSession(state.first);
  assert.equal(held.status, 'ended');
  const reported = clerk.client.sessions.find((s) => s.id === state.first);
  assert.equal(reported?.status ?? 'ended', 'ended');
  assert.equal(activeIds().includes(state.first), false);
  const client = await serverClient();
  assert.notEqual(client.last_active_session_id, state.first);
});

test('session.remove() removes a session', async () => {
  const { ticket } = await userWithTicket('Edsger');
  const signIn = await clerk.client.signIn.create({ strategy: 'ticket', ticket });
  state.third = signIn.createdSessionId;
  await clerk.setActive({ session: state.third });
  const session = clerk.client.sessions.find((s) => s.id === state.third);
  await session.remove();
  assert.equal((await serverSession(state.third)).status, 'removed');
  assert.equal(activeIds().includes(state.third), false);
});

test('signOut() removes every session of the client', async () => {
  await clerk.setActive({ session: state.second });
  const before = seen.length;
  await clerk.signOut(async () => {});
  assert.ok(seen.slice(before).includes('DELETE /v1/client/sessions'), seen.slice(before).join(', '));
  assert.equal((await serverSession(state.second)).status, 'removed');
  assert.equal(clerk.session ?? null, null);
  assert.equal(clerk.user ?? null, null);
  const client = await serverClient();
  assert.equal(client.last_active_session_id, null);
  assert.equal(client.sessions.filter((s) => s.status === 'active').length, 0);
});

/** Another device of the same user: a native client of its own, signed in with a ticket. */
async function otherDevice(userId) {
  const { token: ticket } = await bapi('POST', '/v1/sign_in_tokens', { user_id: userId });
  const created = await fetch(`${base}/v1/client?_is_native=1`, { method: 'POST', headers: { authorization: '' } });
  const res = await fetch(`${base}/v1/client/sign_ins?_is_native=1`, {
    method: 'POST',
    headers: {
      authorization: created.headers.get('authorization'),
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
    },
    body: `strategy=ticket&ticket=${encodeURIComponent(ticket)}`,
  });
  assert.equal(res.status, 200);
  const sessionId = (await res.json()).response.created_session_id;
  const token = res.headers.get('authorization');
  const mint = () => fetch(`${base}/v1/client/sessions/${sessionId}/tokens?_is_native=1`, { method: 'POST', headers: { authorization: token } });
  return { sessionId, token, mint };
}

test('user.getSessions() lists the sessions on every device with their activity; revoke() signs the other one out', async () => {
  const { user, ticket } = await userWithTicket('Devi');
  state.devi = user;
  const signIn = await clerk.client.signIn.create({ strategy: 'ticket', ticket });
  await clerk.setActive({ session: signIn.createdSessionId });
  state.here = signIn.createdSessionId;
  const phone = await otherDevice(user.id);

  const sessions = await clerk.user.getSessions();
  assert.deepEqual(sessions.map((s) => s.id).sort(), [state.here, phone.sessionId].sort());
  const listed = sessions.find((s) => s.id === phone.sessionId);
  assert.equal(listed.status, 'active');
  assert.equal(listed.latestActivity.browserName, 'Safari');
  assert.equal(listed.latestActivity.deviceType, 'iPhone');
  assert.equal(listed.latestActivity.isMobile, true);
  assert.equal(listed.latestActivity.ipAddress, '127.0.0.1');
  assert.ok(seen.includes('GET /v1/me/sessions/active'), seen.join(', '));

  await listed.revoke();
  assert.equal((await serverSession(phone.sessionId)).status, 'revoked');
  const refused = await phone.mint();
  assert.equal(refused.status, 401);
  assert.equal((await refused.json()).errors[0].code, 'signed_out');
  assert.deepEqual((await clerk.user.getSessions()).map((s) => s.id), [state.here]);
});

test("a session revoked from another device: clerk-js's next getToken() finds it signed out", async () => {
  const laptop = await otherDevice(state.devi.id);
  const res = await fetch(`${base}/v1/me/sessions/${state.here}/revoke?_is_native=1&_clerk_session_id=${laptop.sessionId}`, {
    method: 'POST',
    headers: { authorization: laptop.token },
  });
  assert.equal(res.status, 200);
  assert.equal((await serverSession(state.here)).status, 'revoked');

  let jwt = null;
  try {
    jwt = await clerk.session.getToken({ skipCache: true });
  } catch {
    // clerk-js may reject as well as answer null: either way no token.
  }
  assert.equal(jwt, null);
  // clerk-js reloads its client on the 401 and drops the revoked session.
  for (let i = 0; i < 50 && clerk.session; i += 1) await new Promise((r) => setTimeout(r, 100));
  assert.equal(clerk.session ?? null, null);
  assert.equal(clerk.user ?? null, null);
});
