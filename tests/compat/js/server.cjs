// The local server under test, as the compat run started it (tests/compat/run.sh), and the
// Backend API calls the scenarios use to set up users and read back what the server holds.
'use strict';

const base = process.env.COMPAT_URL;
const secretKey = process.env.COMPAT_SECRET_KEY;
if (!base || !secretKey) {
  throw new Error('COMPAT_URL and COMPAT_SECRET_KEY must be set (tests/compat/run.sh sets them)');
}

// A publishable key names the Frontend API host: 'pk_live_' + base64('<host>$').
const host = new URL(base).host;
const publishableKey = 'pk_live_' + Buffer.from(`${host}$`).toString('base64').replace(/=+$/, '');

async function bapi(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${secretKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** A new user and a sign-in ticket for it. */
async function userWithTicket(firstName) {
  const email = `${firstName.toLowerCase()}.${Date.now()}.${Math.random().toString(36).slice(2)}@example.com`;
  const user = await bapi('POST', '/v1/users', { first_name: firstName, email_address: [email] });
  const token = await bapi('POST', '/v1/sign_in_tokens', { user_id: user.id });
  return { user, ticket: token.token };
}

/** The RSA-2048 public key of the instance as PEM, from the JWKS (for `jwtKey`). */
async function publicKeyPem() {
  const { createPublicKey } = require('node:crypto');
  const jwks = await bapi('GET', '/v1/jwks');
  return createPublicKey({ key: jwks.keys[0], format: 'jwk' }).export({ type: 'spki', format: 'pem' });
}

function decodeJwt(jwt) {
  const [header, payload] = jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
  return { header, payload };
}

module.exports = { base, secretKey, publishableKey, bapi, userWithTicket, publicKeyPem, decodeJwt };

/** The origin the compat run allows (ALLOWED_ORIGINS); browser requests send it. */
const appOrigin = process.env.COMPAT_APP_ORIGIN || 'http://app.test';

/**
 * A browser-style sign-in over the Frontend API: a client with the `__client` cookie, a ticket
 * sign-in, and a session token minted with `Origin` (so it carries `azp`).
 */
async function browserSignIn(firstName) {
  const { user, ticket } = await userWithTicket(firstName);
  let cookie = '';
  const send = async (path, body) => {
    const res = await fetch(base + path, {
      method: 'POST',
      headers: {
        origin: appOrigin,
        ...(cookie ? { cookie } : {}),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body,
    });
    const set = res.headers.getSetCookie().find((c) => c.startsWith('__client='));
    if (set) cookie = set.split(';')[0];
    const json = await res.json();
    if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  await send('/v1/client');
  const signIn = await send('/v1/client/sign_ins', `strategy=ticket&ticket=${encodeURIComponent(ticket)}`);
  const sessionId = signIn.response.created_session_id;
  const token = await send(`/v1/client/sessions/${sessionId}/tokens`);
  return { user, sessionId, jwt: token.jwt, clientCookie: cookie.slice('__client='.length) };
}

module.exports.appOrigin = appOrigin;
module.exports.browserSignIn = browserSignIn;

/** Runs `fn` with the clock moved `ms` ahead, as if that much time had passed. */
async function later(ms, fn) {
  const realNow = Date.now;
  Date.now = () => realNow() + ms;
  try {
    return await fn();
  } finally {
    Date.now = realNow;
  }
}

/** The reason @clerk/backend's verifyToken gives for refusing `jwt`. */
async function refusal(jwt, options) {
  // Loaded here, not at the top: the clerk-js suite shares this file and never verifies.
  const { verifyToken } = require('@clerk/backend');
  try {
    await verifyToken(jwt, options);
  } catch (err) {
    return err.reason;
  }
  require('node:assert/strict').fail('verifyToken accepted the token');
}

module.exports.later = later;
module.exports.refusal = refusal;
