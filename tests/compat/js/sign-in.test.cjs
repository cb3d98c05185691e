// First-party sign-up and sign-in as clerk-js drives them (its react-native build, as
// @clerk/expo uses it, with the native client-token flow of clerk-js.test.cjs): email address
// and password, email codes, password reset, and the errors clerk-js surfaces. Run with
// `node -C react-native` so `@clerk/clerk-js` resolves to dist/clerk.native.js.
//
// The codes come from a real SMTP server: run.sh starts a local-api of its own for this suite
// with SMTP_URL pointing at scripts/smtp_sink.py, and SMTP_SINK_URL is where the sink answers
// `GET /messages?to=ADDR`. Every session token a flow ends with is verified by
// @clerk/backend's verifyToken (through `apiUrl`, GET /v1/jwks).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { base, secretKey, publishableKey, bapi, decodeJwt } = require('./server.cjs');
const { verifyToken } = require('@clerk/backend');

const sinkUrl = process.env.SMTP_SINK_URL;
if (!sinkUrl) {
  throw new Error('SMTP_SINK_URL must be set (tests/compat/run.sh starts an SMTP sink for this suite)');
}

// clerk-js opens BroadcastChannels where the runtime has them, as Node does: one for its
// session-token cache when it loads, one per instance. An open channel with a listener keeps
// Node running, so each is recorded here and closed when its instance is discarded
// (`withClerk`), the cache's after the last scenario.
const channels = new Set();
const NodeBroadcastChannel = globalThis.BroadcastChannel;
globalThis.BroadcastChannel = class extends NodeBroadcastChannel {
  constructor(name) {
    super(name);
    channels.add(this);
  }

  close() {
    channels.delete(this);
    super.close();
  }
};
test.after(() => {
  for (const channel of channels) channel.close();
});

// clerk-js reads window.location when it signs out; React Native has a window object too.
globalThis.window = globalThis;
const { Clerk, ClerkAPIResponseError, isClerkAPIResponseError } = require('@clerk/clerk-js');

process.env.CLERK_TELEMETRY_DISABLED = '1';
const remote = { secretKey, apiUrl: base, skipJwksCache: true };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh address for one scenario (the server keeps addresses lowercased). */
const freshEmail = (who) => `${who}.${Date.now()}.${Math.random().toString(36).slice(2, 10)}@example.com`;
/** A password of no common-password list, 8 to 72 characters. */
const freshPassword = () => `Compat-${Math.random().toString(36).slice(2, 12)}-Pw!`;

/**
 * A clerk-js instance with a client of its own, loaded, set up as @clerk/expo sets it up (and
 * as clerk-js.test.cjs does): no cookies, `_is_native=1`, the client token in Authorization,
 * taken from each response's Authorization header. `seen` lists every request it sent.
 */
async function nativeClerk() {
  const before = new Set(channels);
  const clerk = new Clerk(publishableKey, { proxyUrl: base });
  const seen = [];
  let clientJwt = '';
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
  await clerk.load({ standardBrowser: false, telemetry: false });
  assert.equal(clerk.loaded, true);
  assert.equal(clerk.session ?? null, null);
  const own = [...channels].filter((c) => !before.has(c));
  return { clerk, seen, close: () => own.forEach((c) => c.close()) };
}

/**
 * Runs `fn` with a fresh clerk-js instance, then signs it out (every session of its client
 * removed, as the server then holds them), whether `fn` passed or not, so no session of one
 * scenario outlives it, and closes its channels. A failed sign-out fails a scenario that
 * passed, and leaves the failure of one that did not as it was.
 */
async function withClerk(fn) {
  const native = await nativeClerk();
  let passed = false;
  try {
    const result = await fn(native);
    passed = true;
    return result;
  } finally {
    try {
      const ids = (native.clerk.client?.sessions ?? []).map((s) => s.id);
      if (ids.length) {
        await native.clerk.signOut(async () => {});
        assert.equal(native.clerk.session ?? null, null);
        for (const id of ids) assert.equal((await bapi('GET', `/v1/sessions/${id}`)).status, 'removed');
      }
    } catch (err) {
      if (passed) throw err;
    } finally {
      native.close();
    }
  }
}

/**
 * The email messages the sink holds for `address`; `next()` waits (up to about 5 s: the code
 * is sent after the HTTP answer) for one more than were there when it was last called, and
 * returns it with the code it carries (the first run of six digits of its text part).
 */
function mailbox(address) {
  let seenCount = 0;
  const list = async () => {
    const res = await fetch(`${sinkUrl}/messages?to=${encodeURIComponent(address)}`);
    assert.equal(res.status, 200);
    return res.json();
  };
  return {
    list,
    async next() {
      let messages = [];
      for (let i = 0; i < 50; i += 1) {
        messages = await list();
        if (messages.length > seenCount) break;
        await sleep(100);
      }
      assert.ok(messages.length > seenCount, `a new message to ${address} within 5 s (${messages.length} so far)`);
      seenCount = messages.length;
      const message = messages[messages.length - 1];
      assert.deepEqual(message.to.map((t) => t.toLowerCase()), [address.toLowerCase()]);
      assert.match(message.from, /no-reply@compat\.test/);
      const code = (message.text ?? '').match(/\d{6}/)?.[0];
      assert.ok(code, `a six-digit code in the text part: ${JSON.stringify(message.text)}`);
      return { message, code };
    },
  };
}

/** A six-digit code that is not `code`. */
const otherCode = (code) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

/**
 * The ClerkAPIResponseError `promise` rejects with, checked to be one and to carry `code` first
 * (and `status`, when given).
 */
async function apiError(promise, code, status) {
  let error = null;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  assert.ok(error, `rejected with ${code}`);
  assert.ok(isClerkAPIResponseError(error), `a ClerkAPIResponseError, not ${error?.stack ?? error}`);
  assert.ok(error instanceof ClerkAPIResponseError);
  assert.equal(error.errors[0]?.code, code, JSON.stringify(error.errors));
  if (status !== undefined) assert.equal(error.status, status);
  return error;
}

/**
 * setActive on the session a flow created, then getToken(): the token @clerk/backend's
 * verifyToken accepts is for this session and `userId`. Returns its claims.
 */
async function activateAndVerify(clerk, sessionId, userId) {
  assert.ok(sessionId, 'the flow created a session');
  await clerk.setActive({ session: sessionId });
  assert.equal(clerk.session?.id, sessionId);
  assert.equal(clerk.session.status, 'active');
  assert.equal(clerk.user?.id, userId);
  const jwt = await clerk.session.getToken();
  assert.ok(jwt, 'getToken() returned a token');
  assert.equal(decodeJwt(jwt).header.alg, 'RS256');
  const claims = await verifyToken(jwt, remote);
  assert.equal(claims.sub, userId);
  assert.equal(claims.sid, sessionId);
  assert.equal(claims.iss, base);
  const held = await bapi('GET', `/v1/sessions/${sessionId}`);
  assert.equal(held.status, 'active');
  assert.equal(held.user_id, userId);
  return claims;
}

/** A user made through the Backend API with `email` and `password`. */
async function userWithPassword(email, password) {
  const user = await bapi('POST', '/v1/users', { email_address: [email], password });
  assert.equal(user.password_enabled, true);
  return user;
}

/** The email_code factor clerk-js lists for the sign-in's identifier, with its address id. */
function emailCodeFactor(signIn, strategy = 'email_code') {
  const factor = (signIn.supportedFirstFactors ?? []).find((f) => f.strategy === strategy);
  assert.ok(factor, `${strategy} among the supported first factors: ${JSON.stringify(signIn.supportedFirstFactors)}`);
  assert.match(factor.emailAddressId ?? '', /^idn_/);
  return factor;
}

// ---------------------------------------------------------------------------------------
// The flows.

test('sign-up: email address and password, the address verified by the emailed code; the session token verifies', async () => {
  await withClerk(async ({ clerk, seen }) => {
    const email = freshEmail('signup');
    const password = freshPassword();
    const mail = mailbox(email);

    let signUp = await clerk.client.signUp.create({ emailAddress: email, password });
    assert.ok(seen.includes('POST /v1/client/sign_ups'), seen.join(', '));
    assert.equal(signUp.status, 'missing_requirements');
    assert.equal(signUp.emailAddress, email);
    assert.ok(signUp.unverifiedFields.includes('email_address'), JSON.stringify(signUp.unverifiedFields));
    assert.deepEqual(signUp.missingFields, []);
    assert.equal(signUp.createdSessionId, null);

    signUp = await signUp.prepareEmailAddressVerification({ strategy: 'email_code' });
    assert.equal(signUp.verifications.emailAddress.status, 'unverified');
    assert.equal(signUp.verifications.emailAddress.strategy, 'email_code');
    const { code } = await mail.next();

    signUp = await signUp.attemptEmailAddressVerification({ code });
    assert.equal(signUp.status, 'complete');
    assert.equal(signUp.verifications.emailAddress.status, 'verified');
    assert.match(signUp.createdUserId ?? '', /^user_/);
    assert.match(signUp.createdSessionId ?? '', /^sess_/);

    await activateAndVerify(clerk, signUp.createdSessionId, signUp.createdUserId);
    assert.equal(clerk.user.primaryEmailAddress.emailAddress, email);
    assert.equal(clerk.user.primaryEmailAddress.verification.status, 'verified');
    assert.equal(clerk.user.passwordEnabled, true);

    const user = await bapi('GET', `/v1/users/${signUp.createdUserId}`);
    assert.equal(user.password_enabled, true);
    assert.equal(user.email_addresses[0].email_address, email);
    assert.equal(user.email_addresses[0].verification.status, 'verified');
    // The code was spent: the one message, nothing more.
    assert.equal((await mail.list()).length, 1);
  });
});

test('password sign-in: a Backend API user with a password signs in at once; the session token verifies', async () => {
  const email = freshEmail('password');
  const password = freshPassword();
  const user = await userWithPassword(email, password);
  await withClerk(async ({ clerk, seen }) => {
    const signIn = await clerk.client.signIn.create({ identifier: email, password });
    assert.ok(seen.includes('POST /v1/client/sign_ins'), seen.join(', '));
    assert.equal(signIn.status, 'complete');
    assert.equal(signIn.identifier, email);
    await activateAndVerify(clerk, signIn.createdSessionId, user.id);
  });
  // No code was asked for, so none was sent.
  assert.deepEqual(await mailbox(email).list(), []);
});

test('email-code sign-in: the code to the address of supportedFirstFactors, then attemptFirstFactor', async () => {
  const email = freshEmail('emailcode');
  const user = await userWithPassword(email, freshPassword());
  const mail = mailbox(email);
  await withClerk(async ({ clerk }) => {
    let signIn = await clerk.client.signIn.create({ identifier: email });
    assert.equal(signIn.status, 'needs_first_factor');
    assert.equal(signIn.identifier, email);
    const factor = emailCodeFactor(signIn);
    assert.equal(factor.safeIdentifier, email);
    assert.equal(factor.emailAddressId, user.email_addresses[0].id);
    assert.ok(signIn.supportedFirstFactors.some((f) => f.strategy === 'password'), JSON.stringify(signIn.supportedFirstFactors));

    signIn = await signIn.prepareFirstFactor({ strategy: 'email_code', emailAddressId: factor.emailAddressId });
    assert.equal(signIn.status, 'needs_first_factor');
    assert.equal(signIn.firstFactorVerification.strategy, 'email_code');
    assert.equal(signIn.firstFactorVerification.status, 'unverified');
    const { code } = await mail.next();

    signIn = await signIn.attemptFirstFactor({ strategy: 'email_code', code });
    assert.equal(signIn.status, 'complete');
    assert.equal(signIn.firstFactorVerification.status, 'verified');
    await activateAndVerify(clerk, signIn.createdSessionId, user.id);
  });
});

test('reset password: reset_password_email_code, needs_new_password, resetPassword; then only the new password signs in', async () => {
  const email = freshEmail('reset');
  const oldPassword = freshPassword();
  const newPassword = freshPassword();
  const user = await userWithPassword(email, oldPassword);
  const mail = mailbox(email);
  await withClerk(async ({ clerk }) => {
    let signIn = await clerk.client.signIn.create({ identifier: email });
    assert.equal(signIn.status, 'needs_first_factor');
    const factor = emailCodeFactor(signIn, 'reset_password_email_code');

    signIn = await signIn.prepareFirstFactor({ strategy: 'reset_password_email_code', emailAddressId: factor.emailAddressId });
    assert.equal(signIn.firstFactorVerification.strategy, 'reset_password_email_code');
    assert.equal(signIn.firstFactorVerification.status, 'unverified');
    const { code } = await mail.next();

    signIn = await signIn.attemptFirstFactor({ strategy: 'reset_password_email_code', code });
    assert.equal(signIn.status, 'needs_new_password');
    assert.equal(signIn.firstFactorVerification.status, 'verified');
    assert.equal(signIn.createdSessionId, null);

    signIn = await signIn.resetPassword({ password: newPassword });
    assert.equal(signIn.status, 'complete');
    await activateAndVerify(clerk, signIn.createdSessionId, user.id);
  });

  await withClerk(async ({ clerk }) => {
    const refused = await apiError(clerk.client.signIn.create({ identifier: email, password: oldPassword }), 'form_password_incorrect', 422);
    assert.equal(refused.errors[0].meta?.paramName, 'password');
    const signIn = await clerk.client.signIn.create({ identifier: email, password: newPassword });
    assert.equal(signIn.status, 'complete');
    await activateAndVerify(clerk, signIn.createdSessionId, user.id);
  });
  const verified = await fetch(`${base}/v1/users/${user.id}/verify_password`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ password: newPassword }),
  });
  assert.equal(verified.status, 200, await verified.clone().text());
});

// ---------------------------------------------------------------------------------------
// Errors, as clerk-js surfaces them: a ClerkAPIResponseError with Clerk's error code first.

test('a wrong email code: form_code_incorrect, and the right one still signs in', async () => {
  const email = freshEmail('wrongcode');
  const user = await userWithPassword(email, freshPassword());
  const mail = mailbox(email);
  await withClerk(async ({ clerk }) => {
    let signIn = await clerk.client.signIn.create({ identifier: email });
    signIn = await signIn.prepareFirstFactor({ strategy: 'email_code', emailAddressId: emailCodeFactor(signIn).emailAddressId });
    const { code } = await mail.next();

    const refused = await apiError(signIn.attemptFirstFactor({ strategy: 'email_code', code: otherCode(code) }), 'form_code_incorrect', 422);
    assert.equal(refused.errors[0].meta?.paramName, 'code');

    signIn = await clerk.client.signIn.attemptFirstFactor({ strategy: 'email_code', code });
    assert.equal(signIn.status, 'complete');
    await activateAndVerify(clerk, signIn.createdSessionId, user.id);
  });
});

test('a wrong sign-up code: form_code_incorrect, and the right one still completes the sign-up', async () => {
  const email = freshEmail('wrongsignupcode');
  const mail = mailbox(email);
  await withClerk(async ({ clerk }) => {
    let signUp = await clerk.client.signUp.create({ emailAddress: email, password: freshPassword() });
    signUp = await signUp.prepareEmailAddressVerification({ strategy: 'email_code' });
    const { code } = await mail.next();

    await apiError(signUp.attemptEmailAddressVerification({ code: otherCode(code) }), 'form_code_incorrect', 422);

    signUp = await clerk.client.signUp.attemptEmailAddressVerification({ code });
    assert.equal(signUp.status, 'complete');
    await activateAndVerify(clerk, signUp.createdSessionId, signUp.createdUserId);
  });
});

test('sign-up with an email address a user already has: form_identifier_exists', async () => {
  const email = freshEmail('exists');
  await userWithPassword(email, freshPassword());
  await withClerk(async ({ clerk }) => {
    const refused = await apiError(clerk.client.signUp.create({ emailAddress: email, password: freshPassword() }), 'form_identifier_exists', 422);
    assert.equal(refused.errors[0].meta?.paramName, 'email_address');
  });
  assert.deepEqual(await mailbox(email).list(), [], 'no code for a refused sign-up');
});

test('sign-in with an identifier no user has: form_identifier_not_found', async () => {
  const email = freshEmail('nobody');
  await withClerk(async ({ clerk }) => {
    const refused = await apiError(clerk.client.signIn.create({ identifier: email }), 'form_identifier_not_found', 422);
    assert.equal(refused.errors[0].meta?.paramName, 'identifier');
    await apiError(clerk.client.signIn.create({ identifier: email, password: freshPassword() }), 'form_identifier_not_found', 422);
  });
  assert.deepEqual(await mailbox(email).list(), []);
});

test('sign-up with a common password ("password"): form_password_pwned', async () => {
  const email = freshEmail('pwned');
  await withClerk(async ({ clerk }) => {
    const refused = await apiError(clerk.client.signUp.create({ emailAddress: email, password: 'password' }), 'form_password_pwned', 422);
    assert.equal(refused.errors[0].meta?.paramName, 'password');
  });
});
