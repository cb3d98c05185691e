// @clerk/backend against the service: its token verifier (remote JWKS through `apiUrl`, and a
// PEM `jwtKey`), `authenticateRequest`, and the Backend API client pointed at `apiUrl`.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { verifyToken, createClerkClient } = require('@clerk/backend');
const { base, secretKey, publishableKey, appOrigin, bapi, browserSignIn, publicKeyPem, decodeJwt, later, refusal } = require('./server.cjs');

process.env.CLERK_TELEMETRY_DISABLED = '1';
const clerk = createClerkClient({ secretKey, publishableKey, apiUrl: base });
const remote = { secretKey, apiUrl: base, skipJwksCache: true };

let signedIn; // { user, sessionId, jwt } from a browser sign-in with Origin = appOrigin

test.before(async () => {
  signedIn = await browserSignIn('Barbara');
});

test('verifyToken accepts a session token through apiUrl (GET /v1/jwks)', async () => {
  const claims = await verifyToken(signedIn.jwt, remote);
  assert.equal(claims.sub, signedIn.user.id);
  assert.equal(claims.sid, signedIn.sessionId);
  assert.equal(claims.azp, appOrigin);
  assert.equal(claims.iss, base);
});

test('verifyToken accepts a session token through jwtKey (the PEM public key)', async () => {
  const claims = await verifyToken(signedIn.jwt, { jwtKey: await publicKeyPem() });
  assert.equal(claims.sid, signedIn.sessionId);
});

test('verifyToken accepts the right authorizedParties and refuses a wrong one', async () => {
  const ok = await verifyToken(signedIn.jwt, { ...remote, authorizedParties: [appOrigin] });
  assert.equal(ok.azp, appOrigin);
  assert.equal(await refusal(signedIn.jwt, { ...remote, authorizedParties: ['https://evil.example'] }), 'token-invalid-authorized-parties');
});

test('verifyToken refuses an expired token', async () => {
  const { exp } = decodeJwt(signedIn.jwt).payload;
  const pastExpiry = (exp + 10) * 1000 - Date.now();
  assert.equal(await later(pastExpiry, () => refusal(signedIn.jwt, remote)), 'token-expired');
  assert.equal(await later(pastExpiry, async () => refusal(signedIn.jwt, { jwtKey: await publicKeyPem() })), 'token-expired');
});

test('verifyToken refuses a token signed by another key', async () => {
  const { header, payload } = decodeJwt(signedIn.jwt);
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signingInput = `${part(header)}.${part(payload)}`; // same kid and claims, other key
  const forged = `${signingInput}.${crypto.sign('RSA-SHA256', Buffer.from(signingInput), privateKey).toString('base64url')}`;
  assert.equal(await refusal(forged, remote), 'token-invalid-signature');
  assert.equal(await refusal(forged, { jwtKey: await publicKeyPem() }), 'token-invalid-signature');
});

test('authenticateRequest signs in a request with Authorization: Bearer <session token>', async () => {
  const request = new Request('http://app.test/api/me', { headers: { authorization: `Bearer ${signedIn.jwt}` } });
  const state = await clerk.authenticateRequest(request, { authorizedParties: [appOrigin] });
  assert.equal(state.isSignedIn, true, state.reason);
  const auth = state.toAuth();
  assert.equal(auth.userId, signedIn.user.id);
  assert.equal(auth.sessionId, signedIn.sessionId);

  const wrong = await clerk.authenticateRequest(request, { authorizedParties: ['https://evil.example'] });
  assert.equal(wrong.isSignedIn, false);
  assert.equal(wrong.reason, 'token-invalid-authorized-parties');
});

test('Backend API client: users and sign-in tokens', async () => {
  const user = await clerk.users.createUser({ firstName: 'Donald', lastName: 'Knuth', emailAddress: ['don@example.com'], externalId: 'ext-don' });
  assert.match(user.id, /^user_/);
  assert.equal(user.firstName, 'Donald');
  assert.equal(user.primaryEmailAddress.emailAddress, 'don@example.com');
  assert.equal(user.externalId, 'ext-don');
  const again = await clerk.users.getUser(user.id);
  assert.equal(again.id, user.id);
  assert.equal(again.lastName, 'Knuth');

  const token = await clerk.signInTokens.createSignInToken({ userId: user.id, expiresInSeconds: 600 });
  assert.equal(token.userId, user.id);
  assert.equal(token.status, 'pending');
  assert.ok(token.token);

  await assert.rejects(clerk.users.getUser('user_doesnotexist'), (err) => err.status === 404 && err.errors[0].code === 'resource_not_found');
});

test('Backend API client: sessions list, get, getToken, getToken with a template, revoke', async () => {
  const { user, sessionId } = await browserSignIn('Frances');
  const list = await clerk.sessions.getSessionList({ userId: user.id });
  assert.equal(list.totalCount, 1);
  assert.deepEqual(list.data.map((s) => s.id), [sessionId]);
  assert.equal(list.data[0].status, 'active');

  const session = await clerk.sessions.getSession(sessionId);
  assert.equal(session.userId, user.id);
  assert.equal(session.status, 'active');

  const token = await clerk.sessions.getToken(sessionId);
  const claims = await verifyToken(token.jwt, remote);
  assert.equal(claims.sid, sessionId);
  assert.equal(claims.sub, user.id);

  const name = `compat-backend-${Date.now()}`;
  await clerk.jwtTemplates.create({ name, claims: { role: 'admin', name: '{{user.first_name}}' }, lifetime: 60 });
  const templated = await clerk.sessions.getToken(sessionId, name, 300);
  const tclaims = await verifyToken(templated.jwt, remote);
  assert.equal(tclaims.sub, user.id);
  assert.equal(tclaims.role, 'admin');
  assert.equal(tclaims.name, 'Frances');
  assert.equal(tclaims.exp - tclaims.iat, 300);

  const revoked = await clerk.sessions.revokeSession(sessionId);
  assert.equal(revoked.status, 'revoked');
  assert.equal((await clerk.sessions.getSession(sessionId)).status, 'revoked');
  const active = await clerk.sessions.getSessionList({ userId: user.id, status: 'active' });
  assert.equal(active.totalCount, 0);
  await assert.rejects(clerk.sessions.getToken(sessionId), (err) => err.status >= 400 && err.status < 500);
});

test('Backend API client: JWT templates create, list, get, update, delete', async () => {
  const name = `compat-tpl-${Date.now()}`;
  const created = await clerk.jwtTemplates.create({ name, claims: { aud: 'api', email: '{{user.primary_email_address}}' }, lifetime: 120, allowedClockSkew: 10 });
  assert.match(created.id, /^jtmp_/);
  assert.equal(created.name, name);
  assert.deepEqual(created.claims, { aud: 'api', email: '{{user.primary_email_address}}' });
  assert.equal(created.lifetime, 120);
  assert.equal(created.allowedClockSkew, 10);

  const list = await clerk.jwtTemplates.list();
  assert.ok(list.data.some((t) => t.id === created.id));
  assert.equal(list.totalCount, list.data.length);

  const got = await clerk.jwtTemplates.get(created.id);
  assert.equal(got.name, name);

  const updated = await clerk.jwtTemplates.update({ templateId: created.id, name, claims: { aud: 'api2' }, lifetime: 90 });
  assert.deepEqual(updated.claims, { aud: 'api2' });
  assert.equal(updated.lifetime, 90);

  const deleted = await clerk.jwtTemplates.delete(created.id);
  assert.equal(deleted.deleted, true);
  await assert.rejects(clerk.jwtTemplates.get(created.id), (err) => err.status === 404);

  await assert.rejects(
    clerk.jwtTemplates.create({ name: 'bad', claims: { sub: 'me' } }),
    (err) => err.status === 400 && err.errors[0].code === 'jwt_template_reserved_claim',
  );
});

/** A browser-style ticket sign-in for an existing user: the answer's status and body. */
async function signInAs(userId) {
  const { token: ticket } = await bapi('POST', '/v1/sign_in_tokens', { user_id: userId });
  const client = await fetch(`${base}/v1/client?_is_native=1`, { method: 'POST' });
  const res = await fetch(`${base}/v1/client/sign_ins?_is_native=1`, {
    method: 'POST',
    headers: { authorization: client.headers.get('authorization'), 'content-type': 'application/x-www-form-urlencoded' },
    body: `strategy=ticket&ticket=${encodeURIComponent(ticket)}`,
  });
  return { status: res.status, body: await res.json() };
}

test('Backend API client: banUser revokes every session and refuses sign-ins until unbanUser', async () => {
  const first = await browserSignIn('Bill');
  const second = await signInAs(first.user.id);
  assert.equal(second.status, 200);
  const banned = await clerk.users.banUser(first.user.id);
  assert.equal(banned.id, first.user.id);
  assert.equal(banned.banned, true);
  for (const id of [first.sessionId, second.body.response.created_session_id]) {
    assert.equal((await clerk.sessions.getSession(id)).status, 'revoked');
  }
  const refused = await signInAs(first.user.id);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.errors[0].code, 'user_banned');

  const unbanned = await clerk.users.unbanUser(first.user.id);
  assert.equal(unbanned.banned, false);
  const again = await signInAs(first.user.id);
  assert.equal(again.status, 200);
  assert.equal(again.body.response.status, 'complete');
});

test('Backend API client: deleteUser ends the sessions', async () => {
  const signedIn = await browserSignIn('Dora');
  const deleted = await clerk.users.deleteUser(signedIn.user.id);
  assert.equal(deleted.id, signedIn.user.id);
  assert.equal(deleted.deleted, true);
  assert.equal((await clerk.sessions.getSession(signedIn.sessionId)).status, 'ended');
  await assert.rejects(clerk.users.getUser(signedIn.user.id), (err) => err.status === 404);
});
