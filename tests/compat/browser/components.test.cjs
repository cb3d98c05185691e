// Clerk's prebuilt <SignUp/> and <SignIn/> (@clerk/ui's browser build, handed to clerk-js's
// browser build) in headless Chromium against local-api: a production instance in cookie mode,
// behind the same TLS edge as browser.test.cjs (edge.cjs), with its codes delivered by SMTP to
// the suite's sink. The test types into the forms as a user would, reads each code from the
// sink, and checks what clerk-js holds against what the server holds. Each scenario leaves a
// screenshot in target/browser-suite/ (components-*). Run by tests/compat/run.sh, which sets
// LOCAL_API_BIN, SMTP_SINK_SMTP_URL and SMTP_SINK_URL.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startDeployment, tmpdir } = require('./edge.cjs');

const bin = process.env.LOCAL_API_BIN;
const smtpUrl = process.env.SMTP_SINK_SMTP_URL;
const sinkUrl = process.env.SMTP_SINK_URL;
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
if (!bin) throw new Error('LOCAL_API_BIN must name the local-api binary (tests/compat/run.sh sets it)');
if (!smtpUrl || !sinkUrl) throw new Error('SMTP_SINK_SMTP_URL and SMTP_SINK_URL must name an SMTP sink (tests/compat/run.sh sets them)');
const secretKey = `sk_browser_${crypto.randomBytes(24).toString('hex')}`;
const shots = path.resolve(__dirname, '../../../target/browser-suite');
const uiVersion = require('@clerk/ui/package.json').version;

let deployment;
let browser;
let origin; // the app's origin
let server; // the production instance's server, for Backend API reads

before(async () => {
  fs.mkdirSync(shots, { recursive: true });
  for (const file of fs.readdirSync(shots)) {
    if (file.startsWith('components-')) fs.rmSync(path.join(shots, file));
  }
  // Email delivery by SMTP: without it a production instance offers no codes, and so no
  // sign-up (docs/sign-in.md).
  deployment = await startDeployment({
    bin, secretKey, dir: tmpdir(), env: { SMTP_URL: smtpUrl, EMAIL_FROM: 'Compat <no-reply@compat.test>' },
  });
  origin = deployment.origins.app;
  server = deployment.servers.production;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      `--host-resolver-rules=${deployment.hostRules}`,
      // Trusts the edge's throwaway certificate (its key, not every certificate).
      `--ignore-certificate-errors-spki-list=${deployment.spkiPin}`,
      // Root in CI has no user namespaces for the sandbox; the pages are the suite's own.
      '--no-sandbox',
      // Nothing leaves the machine: no background requests to Google's hosts.
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic', '--no-first-run',
    ],
  });
});

after(async () => {
  await browser?.close();
  await deployment?.stop();
});

/** A Backend API call, straight to the server (not through the browser). */
async function bapi(method, urlPath, body, { ok = true } = {}) {
  const res = await fetch(server + urlPath, {
    method,
    headers: { authorization: `Bearer ${secretKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (ok && !res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${text}`);
  return ok ? JSON.parse(text) : { status: res.status, body: JSON.parse(text) };
}

/** The claims of an RS256 session token, after checking its signature against the JWKS. */
async function verified(jwt) {
  const [h, p, s] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const { keys } = await (await fetch(`${server}/.well-known/jwks.json`)).json();
  const jwk = keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is in the JWKS`);
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  assert.ok(crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')), 'signature verifies');
  return JSON.parse(Buffer.from(p, 'base64url'));
}

/** Every message the sink holds for `address`, oldest first. */
async function inbox(address) {
  const res = await fetch(`${sinkUrl}/messages?to=${encodeURIComponent(address)}`);
  assert.equal(res.status, 200);
  return res.json();
}

/**
 * Waits up to `timeout` ms for `address` to hold more than `seen` messages; the code of the
 * newest (the first run of six digits in its text), or null if none came.
 */
async function nextCode(address, seen, timeout = 10000) {
  for (const end = Date.now() + timeout; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    const messages = await inbox(address);
    if (messages.length > seen) {
      const code = /\d{6}/.exec(messages[messages.length - 1].text)?.[0];
      assert.ok(code, `a code in ${JSON.stringify(messages[messages.length - 1].text)}`);
      return code;
    }
  }
  return null;
}

const uniqueEmail = (name) => `${name}.${crypto.randomUUID()}@example.com`;

/** A user made through the Backend API, with a password when one is given. */
const newUser = (email, password) => bapi('POST', '/v1/users', { email_address: [email], ...(password ? { password } : {}) });

/**
 * A browser of its own for a scenario, on the page that mounts `component`. `requests` gets
 * every URL the page asks for, `problems` every uncaught exception and console error of the
 * page (the browser's own "Failed to load resource" lines aside: the refusals a scenario
 * provokes, and /favicon.ico, which the edge does not serve).
 */
async function openComponent(config, component) {
  const context = await browser.newContext();
  const page = await context.newPage();
  config.page = page;
  config.requests = [];
  config.problems = [];
  page.on('request', (req) => config.requests.push(req.url()));
  page.on('pageerror', (err) => config.problems.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) config.problems.push(`console: ${msg.text()}`);
  });
  await page.goto(`${origin}/components?mount=${component}`);
  assert.equal(await page.evaluate(() => window.ready), true, 'clerk-js loaded with the components');
  return page;
}

/** The primary button of the component's current card ("Continue" and its kin). */
const primaryButton = (page) => page.locator('#component button[data-localization-key$="formButtonPrimary"]');

/** Types a code into the component's code field (one input behind the six boxes). */
const typeCode = (page, code) => page.locator('#component input[autocomplete="one-time-code"]').pressSequentially(code);

/**
 * After a flow completes clerk-js navigates to the after-sign-in/up URL: the plain app page
 * (app.html), which loads clerk-js again from the cookie. Returns what clerk-js holds there.
 */
async function landedSignedIn(page) {
  await page.waitForURL(`${origin}/`, { timeout: 15000 });
  assert.equal(await page.evaluate(() => window.ready), true, 'clerk-js loaded after the redirect');
  return page.evaluate(() => ({
    user: window.Clerk.user?.id ?? null,
    session: window.Clerk.session?.id ?? null,
    email: window.Clerk.user?.primaryEmailAddress?.emailAddress ?? null,
  }));
}

/** The session is active on the server for `userId`, and clerk-js mints a token for it over the cookie. */
async function signedInEverywhere(page, userId, sessionId) {
  assert.ok(sessionId, 'clerk-js has a session');
  const session = await bapi('GET', `/v1/sessions/${sessionId}`);
  assert.equal(session.status, 'active');
  assert.equal(session.user_id, userId);
  const mint = page.waitForRequest((r) => r.url().includes(`/v1/client/sessions/${sessionId}/tokens`));
  const jwt = await page.evaluate(() => window.Clerk.session.getToken({ skipCache: true }));
  const { cookie = '' } = await (await mint).allHeaders();
  assert.match(cookie, /(^|; )__client=/, 'minted over the __client cookie (cookie mode)');
  const claims = await verified(jwt);
  assert.equal(claims.sid, sessionId);
  assert.equal(claims.sub, userId);
  assert.equal(claims.azp, origin);
  assert.equal(claims.iss, deployment.origins.fapi);
}

/**
 * The card after the identifier: the password for a user who has one (the environment's
 * `display_config.preferred_sign_in_strategy` is "password" while passwords are on), else
 * the email code. Returns which card came first.
 */
async function firstFactorCard(page) {
  const password = page.locator('#component h1[data-localization-key="signIn.password.title"]');
  const emailCode = page.locator('#component h1[data-localization-key="signIn.emailCode.title"]');
  await password.or(emailCode).waitFor();
  return (await password.isVisible()) ? 'password' : 'email_code';
}

/** Identifier, Continue, and on to the password card. */
async function identifyForPassword(t, page, email) {
  await page.locator('#component input[name="identifier"]').fill(email);
  await primaryButton(page).click();
  assert.equal(await firstFactorCard(page), 'password', '<SignIn/> asks for the password first');
}

describe(`prebuilt components (@clerk/ui ${uiVersion}) on a production instance (cookie mode)`, () => {
  const config = { name: 'components', shots: 0, page: null, requests: [], problems: [] };

  /**
   * A scenario: a test in a browser of its own, which leaves a screenshot of the page, passed
   * or failed. Every scenario also holds that the page asked nothing of any host but the app's
   * and the Frontend API's (no CDN, no images from Clerk's), and logged no error.
   */
  function scenario(name, fn) {
    test(name, { timeout: 90000 }, async (t) => {
      try {
        await fn(t);
        const elsewhere = config.requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith(`${deployment.origins.fapi}/`) && !/^(blob|data):/.test(u));
        assert.deepEqual(elsewhere, [], 'no request left the deployment');
        assert.deepEqual(config.problems, [], 'no error on the page');
      } finally {
        const file = `${config.name}-${String(++config.shots).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '')}.png`;
        await config.page?.screenshot({ path: path.join(shots, file) }).catch(() => {});
        await config.page?.context().close().catch(() => {});
        config.page = null;
      }
    });
  }

  scenario('<SignUp/> renders from the local @clerk/ui build; nothing comes from elsewhere', async () => {
    const environment = await (await fetch(`${server}/v1/environment`)).json();
    assert.equal(environment.user_settings.sign_up.mode, 'public', 'sign-up is open (codes can be delivered)');
    const page = await openComponent(config, 'sign-up');
    await page.locator('#component input[name="emailAddress"]').waitFor();
    await page.locator('#component input[name="password"]').waitFor();
    assert.equal(await page.evaluate(() => window.Clerk.uiVersion), uiVersion, 'clerk-js runs the pinned @clerk/ui');
    assert.ok(config.requests.includes(`${origin}/clerk-ui/ui.browser.js`), 'ui.browser.js came from the edge');
    assert.ok(config.requests.some((u) => new URL(u).pathname.startsWith('/clerk-ui/signup_')), 'and the SignUp chunk beside it');
  });

  scenario('<SignUp/>: email address and password, the emailed code, signed in', async (t) => {
    const email = uniqueEmail('signup');
    const password = 'correct horse battery staple';
    const page = await openComponent(config, 'sign-up');
    await page.locator('#component input[name="emailAddress"]').fill(email);
    await page.locator('#component input[name="password"]').fill(password);
    await primaryButton(page).click();
    await page.waitForURL(/#\/verify-email-address$/);
    await page.locator('#component h1[data-localization-key="signUp.emailCode.title"]').waitFor();

    // The card asks for the code when it opens: the sign-up's verification has no strategy
    // until a code was sent, which @clerk/ui reads as "none sent yet".
    const code = await nextCode(email, 0);
    assert.ok(code, 'a code reached the sink');
    await typeCode(page, code);

    const now = await landedSignedIn(page);
    assert.ok(now.user, 'clerk-js has a user');
    assert.equal(now.email, email);
    await signedInEverywhere(page, now.user, now.session);
    const user = await bapi('GET', `/v1/users/${now.user}`);
    assert.deepEqual(user.email_addresses.map((e) => [e.email_address, e.verification.status]), [[email, 'verified']]);
    assert.equal(user.password_enabled, true);
    assert.deepEqual(await bapi('POST', `/v1/users/${now.user}/verify_password`, { password }), { verified: true });
    assert.equal((await inbox(email)).length, 1, 'one code was sent');
  });

  scenario('<SignIn/>: identifier, then password, signed in', async (t) => {
    const email = uniqueEmail('signin');
    const password = 'a long pass phrase for sign-in';
    const user = await newUser(email, password);
    const page = await openComponent(config, 'sign-in');
    await identifyForPassword(t, page, email);
    await page.locator('#component input[name="password"]').fill(password);
    await primaryButton(page).click();

    const now = await landedSignedIn(page);
    assert.deepEqual([now.user, now.email], [user.id, email]);
    await signedInEverywhere(page, user.id, now.session);
  });

  scenario('<SignIn/>: a wrong password is refused on the card', async (t) => {
    const email = uniqueEmail('wrong');
    const user = await newUser(email, 'the right pass phrase here');
    const page = await openComponent(config, 'sign-in');
    await identifyForPassword(t, page, email);
    const attempt = page.waitForResponse((r) => r.url().includes('/attempt_first_factor'));
    await page.locator('#component input[name="password"]').fill('not the pass phrase at all');
    await primaryButton(page).click();
    const answer = await attempt;
    assert.equal(answer.status(), 422);
    assert.equal((await answer.json()).errors[0].code, 'form_password_incorrect');
    // @clerk/ui shows the error under the field, and stays on the card.
    const error = page.locator('#component #error-password');
    await error.waitFor();
    assert.match(await error.textContent(), /Password is incorrect/);
    assert.match(page.url(), /#\/factor-one$/);
    assert.equal(await page.evaluate(() => window.Clerk.user ?? null), null);
    assert.deepEqual((await bapi('GET', `/v1/sessions?user_id=${user.id}`)).filter((s) => s.status === 'active'), []);
  });

  scenario('<SignIn/>: the emailed code, signed in', async (t) => {
    const email = uniqueEmail('code');
    const user = await newUser(email);
    const page = await openComponent(config, 'sign-in');
    await page.locator('#component input[name="identifier"]').fill(email);
    await primaryButton(page).click();
    if ((await firstFactorCard(page)) === 'password') {
      t.diagnostic('<SignIn/> opened with the password; the email code is chosen under "Use another method"');
      await page.locator('#component [data-localization-key="footerActionLink__useAnotherMethod"]').click();
      await page.locator('#component').getByRole('button', { name: /Email code to/ }).click();
    }
    const code = await nextCode(email, 0);
    assert.ok(code, 'a sign-in code reached the sink');
    await typeCode(page, code);

    const now = await landedSignedIn(page);
    assert.deepEqual([now.user, now.email], [user.id, email]);
    await signedInEverywhere(page, user.id, now.session);
  });

  scenario('<SignIn/>: forgot password, reset by the emailed code, other devices signed out', async (t) => {
    const email = uniqueEmail('reset');
    const oldPassword = 'the pass phrase she forgot';
    const newPassword = 'a brand new pass phrase';
    const user = await newUser(email, oldPassword);
    // Another device, signed in already (a ticket on a native client).
    const { token } = await bapi('POST', '/v1/sign_in_tokens', { user_id: user.id });
    const other = await fetch(`${server}/v1/client/sign_ins?_is_native=1`, {
      method: 'POST',
      headers: { authorization: '', 'content-type': 'application/x-www-form-urlencoded' },
      body: `strategy=ticket&ticket=${encodeURIComponent(token)}`,
    });
    assert.equal(other.status, 200);
    const otherSession = (await other.json()).response.created_session_id;
    assert.equal((await bapi('GET', `/v1/sessions/${otherSession}`)).status, 'active');

    const page = await openComponent(config, 'sign-in');
    await identifyForPassword(t, page, email);
    await page.locator('#component [data-localization-key="formFieldAction__forgotPassword"]').click();
    await page.locator('#component h1[data-localization-key="signIn.forgotPasswordAlternativeMethods.title"]').waitFor();
    const seen = (await inbox(email)).length;
    await page.locator('#component [data-localization-key="signIn.forgotPasswordAlternativeMethods.blockButton__resetPassword"]').click();
    const code = await nextCode(email, seen);
    assert.ok(code, 'a reset code reached the sink');
    assert.match((await inbox(email)).at(-1).subject, /password reset/i);
    await typeCode(page, code);

    await page.waitForURL(/#\/reset-password$/);
    await page.locator('#component input[name="password"]').fill(newPassword);
    await page.locator('#component input[name="confirmPassword"]').fill(newPassword);
    assert.equal(await page.locator('#component input[name="signOutOfOtherSessions"]').isChecked(), true, '"Sign out of all other devices" is ticked by default');
    await primaryButton(page).click();

    const now = await landedSignedIn(page);
    assert.deepEqual([now.user, now.email], [user.id, email]);
    await signedInEverywhere(page, user.id, now.session);
    assert.deepEqual(await bapi('POST', `/v1/users/${user.id}/verify_password`, { password: newPassword }), { verified: true });
    const old = await bapi('POST', `/v1/users/${user.id}/verify_password`, { password: oldPassword }, { ok: false });
    assert.equal(old.status, 422);
    assert.equal(old.body.errors[0].code, 'form_password_incorrect');
    const otherNow = (await bapi('GET', `/v1/sessions/${otherSession}`)).status;
    assert.notEqual(otherNow, 'active', 'the other device was signed out');
    t.diagnostic(`the other device's session is now ${otherNow}`);
  });
});
