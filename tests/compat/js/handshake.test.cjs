// @clerk/backend's handshake against the service, as a server-rendered app meets it: a page
// request whose `__session` cookie has expired gets "handshake" and a redirect to the
// Frontend API; the browser (here, fetch with the `__client` cookie) follows it to the
// service and back; authenticateRequest on the returning request reads the payload (nonce
// through the Backend API, or a signed token) and is signed in, with the cookies to set. A
// signed-out client hands back signed-out cookies. Then the refresh of an expired token by
// the app's server alone, with the `__refresh` grant the handshake set.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { createClerkClient } = require('@clerk/backend');
const { base, secretKey, appOrigin, bapi, browserSignIn, decodeJwt, later } = require('./server.cjs');

process.env.CLERK_TELEMETRY_DISABLED = '1';

// The publishable key as the service derives it (docs/api.md): standard base64 of
// "<host>$", padding kept. The SDKs derive their cookie suffix from its exact text.
const publishableKey = 'pk_live_' + Buffer.from(`${new URL(base).host}$`).toString('base64');
// The Frontend API is plain http here: proxyUrl makes @clerk/backend send browsers to it
// as it is (without one it assumes https://<host from the publishable key>).
const clerk = createClerkClient({ secretKey, publishableKey, apiUrl: base, proxyUrl: base });
const page = `${appOrigin}/dashboard`;

/** A page request from a browser, with `cookies` (name → value). */
function pageRequest(url, cookies) {
  const cookie = Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join('; ');
  return new Request(url, { headers: { cookie, accept: 'text/html', 'sec-fetch-dest': 'document' } });
}

/** What the app's answer sets, as name → { value, line }. */
function setCookies(headers) {
  const out = {};
  for (const line of headers.getSetCookie()) {
    const [pair] = line.split(';');
    const i = pair.indexOf('=');
    out[pair.slice(0, i)] = { value: pair.slice(i + 1), line };
  }
  return out;
}

/** Follows the SDK's redirect to the Frontend API with the browser's `__client` cookie. */
async function throughTheService(location, clientCookie) {
  assert.ok(location.startsWith(`${base}/v1/client/handshake?`), location);
  const res = await fetch(location, { redirect: 'manual', headers: { cookie: `__client=${clientCookie}` } });
  assert.equal(res.status, 307, await res.text());
  const back = res.headers.get('location');
  assert.ok(back.startsWith(`${page}?`), `back to the page: ${back}`);
  return back;
}

/** A browser signed in on a new client: the session token, the client cookie and its uat. */
async function browser(name) {
  const signedIn = await browserSignIn(name);
  const { iat } = decodeJwt(signedIn.jwt).payload;
  return { ...signedIn, cookies: { __session: signedIn.jwt, __client_uat: String(iat) } };
}

/** The first request of a page load two minutes later: the token has expired. */
async function expiredPageLoad(b) {
  const state = await later(120_000, () => clerk.authenticateRequest(pageRequest(page, b.cookies)));
  assert.equal(state.status, 'handshake', state.reason);
  assert.match(state.reason, /^session-token-expired/);
  return state.headers.get('location');
}

for (const format of ['nonce', 'token']) {
  test(`an expired __session completes the handshake signed in (format=${format})`, async () => {
    const b = await browser(`Hana${format}`);
    let location = await expiredPageLoad(b);
    // @clerk/backend asks for a nonce (also the Frontend API's default); the token form
    // is served when asked for, without the refresh grant.
    if (format === 'token') location = location.replace('format=nonce', 'format=token');
    const back = await throughTheService(location, b.clientCookie);
    assert.ok(new URL(back).searchParams.has(format === 'nonce' ? '__clerk_handshake_nonce' : '__clerk_handshake'));

    const state = await clerk.authenticateRequest(pageRequest(back, b.cookies));
    assert.equal(state.status, 'signed-in', state.reason);
    const auth = state.toAuth();
    assert.equal(auth.userId, b.user.id);
    assert.equal(auth.sessionId, b.sessionId);
    const set = setCookies(state.headers);
    const fresh = decodeJwt(set.__session.value).payload;
    assert.equal(fresh.sid, b.sessionId);
    assert.ok(fresh.iat >= decodeJwt(b.jwt).payload.iat, 'a fresh token');
    assert.ok(Number(set.__client_uat.value) > 0);
    assert.equal(
      Object.keys(set).some((k) => k.startsWith('__refresh_')),
      format === 'nonce',
      'the refresh grant, in the nonce form only',
    );
    if (format === 'nonce') {
      // The page URL still carries the nonce: a replay of it opens nothing and sets no
      // cookie (the SDK renders that one request signed out).
      const replay = await clerk.authenticateRequest(pageRequest(back, {}));
      assert.notEqual(replay.status, 'signed-in');
      assert.equal(setCookies(replay.headers).__session, undefined);
    }

    // The next page load with those cookies is signed in without another handshake.
    const cookies = Object.fromEntries(Object.entries(set).map(([k, v]) => [k, v.value]));
    const next = await clerk.authenticateRequest(pageRequest(page, cookies));
    assert.equal(next.status, 'signed-in', next.reason);
    assert.equal(next.toAuth().sessionId, b.sessionId);
  });
}

test('a signed-out client hands the app signed-out cookies', async () => {
  const b = await browser('Sam');
  await bapi('POST', `/v1/sessions/${b.sessionId}/revoke`);
  const location = await expiredPageLoad(b);
  const back = await throughTheService(location, b.clientCookie);
  const state = await clerk.authenticateRequest(pageRequest(back, b.cookies));
  assert.equal(state.status, 'signed-out', state.reason);
  const set = setCookies(state.headers);
  assert.equal(set.__session.value, '');
  assert.match(set.__session.line, /Max-Age=0/);
  assert.equal(set.__client_uat.value, '0');
});

test('a redirect_url outside the allowed origins is refused', async () => {
  const b = await browser('Eve');
  const location = new URL(await expiredPageLoad(b));
  location.searchParams.set('redirect_url', 'https://evil.example/steal');
  const res = await fetch(location, { redirect: 'manual', headers: { cookie: `__client=${b.clientCookie}` } });
  assert.equal(res.status, 422);
  assert.equal(res.headers.get('location'), null);
  assert.equal((await res.json()).errors[0].meta.param_name, 'redirect_url');
});

test("the app's server refreshes an expired token itself with the __refresh grant", async () => {
  const b = await browser('Rey');
  const back = await throughTheService(await expiredPageLoad(b), b.clientCookie);
  const handshake = await clerk.authenticateRequest(pageRequest(back, b.cookies));
  const cookies = Object.fromEntries(Object.entries(setCookies(handshake.headers)).map(([k, v]) => [k, v.value]));
  // Once the token the handshake set has expired for real (this server's tokens live 30 s,
  // and the SDK allows 5 s of skew), @clerk/backend, seeing the grant beside it, calls
  // POST /v1/sessions/{id}/refresh instead of sending the browser away, and verifies the
  // fresh token it gets at the real time.
  const { exp } = decodeJwt(cookies.__session).payload;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 + 6_000 - Date.now())));
  const state = await clerk.authenticateRequest(pageRequest(page, cookies));
  assert.equal(state.status, 'signed-in', state.reason);
  assert.equal(state.toAuth().sessionId, b.sessionId);
  const set = setCookies(state.headers);
  assert.equal(decodeJwt(set.__session.value).payload.sid, b.sessionId);
  assert.ok(decodeJwt(set.__session.value).payload.exp * 1000 > Date.now());

  // A revoked session refreshes no more (401): the SDK falls back to the handshake.
  await bapi('POST', `/v1/sessions/${b.sessionId}/revoke`);
  const after = await clerk.authenticateRequest(pageRequest(page, cookies));
  assert.equal(after.status, 'handshake', after.reason);
});
