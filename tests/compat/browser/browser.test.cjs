// clerk-js's browser build in headless Chromium against local-api, with the app and the
// Frontend API on different hosts of one site over TLS (edge.cjs), in three configurations:
// a production instance reached directly, the same through the app's own proxy path
// (proxyUrl), and a development instance (dev-browser flow). After each step what clerk-js
// reports is compared with what the server holds; each scenario leaves a screenshot in
// target/browser-suite/. Run by tests/compat/run.sh, which sets LOCAL_API_BIN.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startDeployment, tmpdir } = require('./edge.cjs');

const bin = process.env.LOCAL_API_BIN;
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
if (!bin) throw new Error('LOCAL_API_BIN must name the local-api binary (tests/compat/run.sh sets it)');
const secretKey = `sk_browser_${crypto.randomBytes(24).toString('hex')}`;
const shots = path.resolve(__dirname, '../../../target/browser-suite');

let deployment;
let browser;

before(async () => {
  fs.rmSync(shots, { recursive: true, force: true });
  fs.mkdirSync(shots, { recursive: true });
  // 30 s session tokens, so that the server-rendered app sees one expire within the run.
  deployment = await startDeployment({ bin, secretKey, dir: tmpdir(), env: { SESSION_TOKEN_LIFETIME_SECONDS: '30' } });
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

/** A Backend API call to one instance, straight to its server (not through the browser). */
async function bapi(server, method, urlPath, body) {
  const res = await fetch(server + urlPath, {
    method,
    headers: { authorization: `Bearer ${secretKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** A new user of `server`'s instance and a sign-in ticket for it. */
async function userWithTicket(server, firstName) {
  const email = `${firstName.toLowerCase()}.${crypto.randomUUID()}@example.com`;
  const user = await bapi(server, 'POST', '/v1/users', { first_name: firstName, email_address: [email] });
  const { token } = await bapi(server, 'POST', '/v1/sign_in_tokens', { user_id: user.id });
  return { user, ticket: token };
}

/** The claims of an RS256 session token, after checking its signature against the JWKS. */
async function verified(server, jwt) {
  const [h, p, s] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const { keys } = await (await fetch(`${server}/.well-known/jwks.json`)).json();
  const jwk = keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is in the JWKS`);
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  assert.ok(crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')), 'signature verifies');
  return JSON.parse(Buffer.from(p, 'base64url'));
}

/** Every cookie the browser holds, as the DevTools protocol reports them. */
async function browserCookies(page) {
  const cdp = await page.context().newCDPSession(page);
  try {
    return (await cdp.send('Network.getAllCookies')).cookies;
  } finally {
    await cdp.detach();
  }
}

/** Loads (or reloads) the app and waits for clerk-js; fails with clerk-js's own error. */
async function open(page, url) {
  if (url) await page.goto(url);
  else await page.reload();
  const ready = await page.evaluate(() => window.ready);
  assert.equal(ready, true, `clerk-js loaded on ${page.url()}`);
}

/** What clerk-js holds, from the page. */
const held = (page) => page.evaluate(() => ({
  user: window.Clerk.user?.id ?? null,
  session: window.Clerk.session?.id ?? null,
  active: window.Clerk.client.sessions.filter((s) => s.status === 'active').map((s) => s.id),
}));

/** A ticket sign-in in the page, then setActive, as an app's own sign-in form would. */
const signInWithTicket = (page, ticket) => page.evaluate(async (t) => {
  const signIn = await window.Clerk.client.signIn.create({ strategy: 'ticket', ticket: t });
  await window.Clerk.setActive({ session: signIn.createdSessionId });
  return { status: signIn.status, session: signIn.createdSessionId };
}, ticket);

/** A scenario: a test that leaves a screenshot of the page, passed or failed. */
function scenario(config, name, fn) {
  test(name, { timeout: 60000 }, async () => {
    try {
      await fn();
    } finally {
      const file = `${config.name}-${String(++config.shots).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-')}.png`;
      await config.page?.screenshot({ path: path.join(shots, file) }).catch(() => {});
    }
  });
}

// The production instance, reached directly and through the app's proxy path. The two differ
// in where the client cookie lives: on the Frontend API's host, or on the app's own host.
for (const proxied of [false, true]) {
  const config = { name: proxied ? 'production-proxy' : 'production', shots: 0, page: null };
  describe(proxied ? 'production instance through proxyUrl (cookie mode)' : 'production instance (cookie mode)', () => {
    let origin; // the app's origin
    let clientHost; // where the `__client` cookie lives
    let server; // the instance's server, for Backend API reads
    const state = {};
    const requests = []; // every request the page sent to the Frontend API: { method, path }

    before(async () => {
      origin = proxied ? deployment.origins.proxied : deployment.origins.app;
      clientHost = new URL(proxied ? deployment.origins.proxied : deployment.origins.fapi).hostname;
      server = deployment.servers.production;
      const context = await browser.newContext();
      config.page = await context.newPage();
      const fapiBase = proxied ? deployment.proxyUrl : deployment.origins.fapi;
      config.page.on('request', (req) => {
        if (!req.url().startsWith(fapiBase + '/v1/')) return;
        requests.push({ method: req.method(), path: new URL(req.url()).pathname.replace(/^\/__clerk/, '') });
      });
    });
    after(async () => {
      await config.page?.context().close();
    });

    scenario(config, 'loads signed out', async () => {
      await open(config.page, `${origin}/`);
      assert.deepEqual(await held(config.page), { user: null, session: null, active: [] });
      assert.ok(requests.some((r) => r.path === '/v1/environment'), 'clerk-js read the environment');
    });

    scenario(config, 'ticket sign-in', async () => {
      const { user, ticket } = await userWithTicket(server, 'Ada');
      state.ada = { user };
      const result = await signInWithTicket(config.page, ticket);
      assert.equal(result.status, 'complete');
      state.ada.session = result.session;
      assert.deepEqual(await held(config.page), { user: user.id, session: result.session, active: [result.session] });
      const session = await bapi(server, 'GET', `/v1/sessions/${result.session}`);
      assert.equal(session.status, 'active');
      assert.equal(session.user_id, user.id);
    });

    scenario(config, 'cookie attributes as the browser stores them', async () => {
      const cookies = await browserCookies(config.page);
      const client = cookies.filter((c) => c.name === '__client');
      assert.equal(client.length, 1, `one __client cookie: ${JSON.stringify(client)}`);
      const [c] = client;
      assert.equal(c.domain, clientHost, 'host-only, on the host that answered');
      assert.equal(c.path, '/');
      assert.equal(c.httpOnly, true);
      assert.equal(c.secure, true);
      assert.equal(c.sameSite, 'Lax');
      assert.equal(c.session, false, 'persistent, not a session cookie');
      // The client token's lifetime (CLIENT_TOKEN_LIFETIME_SECONDS, default 365 days).
      const days = (c.expires - Date.now() / 1000) / 86400;
      assert.ok(days > 364 && days <= 365, `expires in ${days} days`);
      // __client_uat on the whole site, for the app's own servers (and suffixed, as Clerk's
      // SDKs name it for this instance).
      const uats = cookies.filter((k) => k.name.startsWith('__client_uat') && k.domain === '.example.test');
      assert.deepEqual(uats.map((k) => k.name).sort(), ['__client_uat', `__client_uat_${deployment.cookieSuffix}`]);
      for (const uat of uats) {
        assert.equal(uat.httpOnly, false, 'readable by the app');
        assert.equal(uat.secure, true);
        assert.equal(uat.sameSite, 'Lax');
        assert.ok(Number(uat.value) > 0, 'signed in: the client updated_at');
      }
      // clerk-js keeps the session token on the app's own domain for server-side rendering.
      const session = cookies.find((k) => k.name === '__session');
      assert.ok(session, '__session set by clerk-js');
      assert.equal((await verified(server, session.value)).sid, state.ada.session);
    });

    scenario(config, 'getToken()', async () => {
      const mint = config.page.waitForRequest((r) => r.url().includes(`/v1/client/sessions/${state.ada.session}/tokens`));
      const jwt = await config.page.evaluate(() => window.Clerk.session.getToken({ skipCache: true }));
      const { cookie = '' } = await (await mint).allHeaders();
      assert.match(cookie, /(^|; )__client=/, 'minted over the cookie');
      const claims = await verified(server, jwt);
      assert.equal(claims.sid, state.ada.session);
      assert.equal(claims.sub, state.ada.user.id);
      assert.equal(claims.azp, origin, 'azp is the page origin');
      assert.equal(claims.iss, deployment.origins.fapi);
    });

    scenario(config, 'a reload keeps the user signed in (the cookie, not memory)', async () => {
      const read = config.page.waitForRequest((r) => r.method() === 'GET' && new URL(r.url()).pathname.endsWith('/v1/client'));
      await open(config.page);
      assert.deepEqual(await held(config.page), { user: state.ada.user.id, session: state.ada.session, active: [state.ada.session] });
      const { cookie = '' } = await (await read).allHeaders();
      assert.match(cookie, /(^|; )__client=/, 'the client came from the __client cookie');
      assert.equal(await config.page.evaluate(() => document.cookie.includes('__client=')), false, 'HttpOnly: not visible to scripts');
    });

    scenario(config, 'a second session on the same client, and switching between the two', async () => {
      const { user, ticket } = await userWithTicket(server, 'Bob');
      const result = await signInWithTicket(config.page, ticket);
      state.bob = { user, session: result.session };
      let now = await held(config.page);
      assert.equal(now.user, user.id);
      assert.deepEqual(new Set(now.active), new Set([state.ada.session, state.bob.session]));
      await config.page.evaluate((id) => window.Clerk.setActive({ session: id }), state.ada.session);
      now = await held(config.page);
      assert.equal(now.session, state.ada.session);
      assert.equal(now.user, state.ada.user.id);
      const jwt = await config.page.evaluate(() => window.Clerk.session.getToken({ skipCache: true }));
      assert.equal((await verified(server, jwt)).sid, state.ada.session);
      for (const s of [state.ada, state.bob]) {
        assert.equal((await bapi(server, 'GET', `/v1/sessions/${s.session}`)).status, 'active');
      }
    });

    scenario(config, 'a touch on focus', async () => {
      // A second tab makes Bob the client's last active session; focusing the first tab, which
      // shows Ada, touches Ada's session, and the server's pointer follows the tab in view.
      const fapiBase = proxied ? deployment.proxyUrl : deployment.origins.fapi;
      const lastActive = (page) => page.evaluate(async (base) => {
        const res = await fetch(`${base}/v1/client`, { credentials: 'include' });
        return (await res.json()).response.last_active_session_id;
      }, fapiBase);
      const tab = await config.page.context().newPage();
      await open(tab, `${origin}/`);
      await tab.evaluate((id) => window.Clerk.setActive({ session: id }), state.bob.session);
      assert.equal(await lastActive(tab), state.bob.session);
      await tab.close();

      const touched = config.page.waitForResponse((res) => res.url().includes(`/v1/client/sessions/${state.ada.session}/touch`));
      await config.page.bringToFront();
      await config.page.evaluate(() => window.dispatchEvent(new Event('focus')));
      const res = await touched;
      assert.equal(res.status(), 200);
      assert.match(res.request().postData() || '', /intent=focus/);
      assert.equal(await lastActive(config.page), state.ada.session);
    });

    scenario(config, 'session.end()', async () => {
      await config.page.evaluate(() => window.Clerk.session.end());
      const ended = await bapi(server, 'GET', `/v1/sessions/${state.ada.session}`);
      assert.equal(ended.status, 'ended');
      const now = await held(config.page);
      assert.ok(!now.active.includes(state.ada.session), 'clerk-js no longer counts it active');
      assert.equal((await bapi(server, 'GET', `/v1/sessions/${state.bob.session}`)).status, 'active', 'the other session is untouched');
    });

    scenario(config, 'signOut()', async () => {
      // signOut() removes every session and then navigates to the after-sign-out URL.
      const navigated = config.page.waitForEvent('load');
      await config.page.evaluate(() => window.Clerk.signOut());
      await navigated;
      await open(config.page);
      assert.deepEqual(await held(config.page), { user: null, session: null, active: [] });
      assert.equal((await bapi(server, 'GET', `/v1/sessions/${state.bob.session}`)).status, 'removed');
      const uat = (await browserCookies(config.page)).find((k) => k.name === '__client_uat' && k.domain === '.example.test');
      assert.equal(uat?.value, '0', 'signed out: __client_uat is 0');
    });
  });
}

describe('active devices: one user on two browsers (production instance)', () => {
  const config = { name: 'devices', shots: 0, page: null };
  const state = {};
  let laptop; // the first browser's page (config.page, for screenshots)
  let phone; // the second browser's page
  before(async () => {
    laptop = await (await browser.newContext()).newPage();
    phone = await (await browser.newContext()).newPage();
    config.page = laptop;
  });
  after(async () => {
    await laptop?.context().close();
    await phone?.context().close();
  });

  scenario(config, 'user.getSessions() lists both browsers with their activity', async () => {
    const server = deployment.servers.production;
    const { user, ticket } = await userWithTicket(server, 'Mo');
    state.user = user;
    await open(laptop, `${deployment.origins.app}/`);
    state.laptop = (await signInWithTicket(laptop, ticket)).session;
    const { token } = await bapi(server, 'POST', '/v1/sign_in_tokens', { user_id: user.id });
    await open(phone, `${deployment.origins.app}/`);
    state.phone = (await signInWithTicket(phone, token)).session;

    const listed = await laptop.evaluate(async () => (await window.Clerk.user.getSessions()).map((s) => ({
      id: s.id, status: s.status, activity: s.latestActivity,
    })));
    assert.deepEqual(listed.map((s) => s.id).sort(), [state.laptop, state.phone].sort());
    for (const s of listed) {
      assert.equal(s.status, 'active');
      assert.ok(s.activity.browserName, `a browser name: ${JSON.stringify(s.activity)}`);
      assert.equal(s.activity.deviceType, 'Linux');
      assert.equal(s.activity.isMobile, false);
      assert.equal(s.activity.ipAddress, '127.0.0.1', 'the address the service saw (the edge, here)');
    }
  });

  scenario(config, 'the first browser revokes the second; its next getToken() is signed out', async () => {
    await laptop.evaluate(async (id) => {
      const sessions = await window.Clerk.user.getSessions();
      await sessions.find((s) => s.id === id).revoke();
    }, state.phone);
    assert.equal((await bapi(deployment.servers.production, 'GET', `/v1/sessions/${state.phone}`)).status, 'revoked');
    const jwt = await phone.evaluate(async () => {
      try {
        return await window.Clerk.session.getToken({ skipCache: true });
      } catch {
        return null;
      }
    });
    assert.equal(jwt, null);
    await phone.waitForFunction(() => !window.Clerk.user, null, { timeout: 10000 });
    // The first browser is untouched.
    const still = await laptop.evaluate(() => window.Clerk.session.getToken({ skipCache: true }));
    assert.equal(JSON.parse(Buffer.from(still.split('.')[1], 'base64url')).sid, state.laptop);
  });
});

describe('an origin outside ALLOWED_ORIGINS', () => {
  const config = { name: 'stranger', shots: 0, page: null };
  const fapi = []; // { path, failure } of every request the page sent to the Frontend API
  before(async () => {
    config.page = await (await browser.newContext()).newPage();
    config.page.on('requestfinished', (req) => {
      if (req.url().startsWith(deployment.origins.fapi)) fapi.push({ path: new URL(req.url()).pathname, failure: null });
    });
    config.page.on('requestfailed', (req) => {
      if (req.url().startsWith(deployment.origins.fapi)) fapi.push({ path: new URL(req.url()).pathname, failure: req.failure()?.errorText });
    });
  });
  after(async () => {
    await config.page?.context().close();
  });

  /** The server's count of `origin_invalid` answers (its Prometheus metrics). */
  async function originRefusals() {
    const res = await fetch(`${deployment.servers.production}/metrics`, { headers: { authorization: `Bearer ${secretKey}` } });
    const line = (await res.text()).split('\n').find((l) => l.startsWith('clerk_errors_total{') && l.includes('endpoint="CreateSignIn"') && l.includes('code="origin_invalid"'));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  scenario(config, 'is refused: no answer readable, no cookie, no sign-in', async () => {
    // The same app and publishable key, on a host of the same site that is not allowed: the
    // browser sends the cookies (same site) but the page may read no answer.
    await config.page.goto(`${deployment.origins.stranger}/`);
    await config.page.evaluate(() => window.ready);
    const reads = fapi.filter((r) => r.path === '/v1/environment' || r.path === '/v1/client');
    assert.ok(reads.length > 0, 'the page did call the Frontend API');
    assert.ok(reads.every((r) => r.failure === 'net::ERR_FAILED'), `every answer blocked by CORS: ${JSON.stringify(reads)}`);
    assert.equal(await config.page.evaluate(() => window.Clerk.user ?? null), null);

    // A sign-in posted anyway is refused (400 origin_invalid) before anything is read or written.
    const { ticket } = await userWithTicket(deployment.servers.production, 'Eve');
    const refusalsBefore = await originRefusals();
    const outcome = await config.page.evaluate(async ({ base, t }) => {
      try {
        await fetch(`${base}/v1/client/sign_ins`, {
          method: 'POST', credentials: 'include',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `strategy=ticket&ticket=${encodeURIComponent(t)}`,
        });
        return 'readable';
      } catch (err) {
        return err.name;
      }
    }, { base: deployment.origins.fapi, t: ticket });
    assert.equal(outcome, 'TypeError', 'the answer is unreadable to the page');
    assert.equal(await originRefusals(), refusalsBefore + 1, 'the server answered origin_invalid');
    assert.deepEqual((await browserCookies(config.page)).filter((c) => c.name === '__client'), [], 'no client cookie was set');
    // The ticket was not spent: a sign-in without a browser Origin (a server's) still redeems it.
    const redeemed = await fetch(`${deployment.servers.production}/v1/client/sign_ins?_is_native=1`, {
      method: 'POST',
      headers: { authorization: '', 'content-type': 'application/x-www-form-urlencoded' },
      body: `strategy=ticket&ticket=${encodeURIComponent(ticket)}`,
    });
    assert.equal(redeemed.status, 200);
    assert.equal((await redeemed.json()).response.status, 'complete');
  });
});

describe('a server-rendered app (@clerk/express): the handshake', () => {
  const config = { name: 'ssr', shots: 0, page: null };
  const state = {};
  let context;
  let origin;
  const rendered = (page) => page.locator('#ssr').textContent();

  before(async () => {
    origin = deployment.origins.ssr;
    context = await browser.newContext();
    config.page = await context.newPage();
  });
  after(async () => {
    await context?.close();
  });

  scenario(config, 'signs in with clerk-js; the server renders the user', async () => {
    await open(config.page, `${origin}/`);
    assert.match(await rendered(config.page), /rendered for nobody/);
    const { user, ticket } = await userWithTicket(deployment.servers.production, 'Page');
    const result = await signInWithTicket(config.page, ticket);
    state.user = user;
    state.session = result.session;
    await open(config.page);
    assert.equal(await rendered(config.page), `rendered for ${user.id} (${result.session})`);
  });

  scenario(config, 'after the session token expires, the next page load completes the handshake signed in', async () => {
    // The tab closes, so clerk-js no longer refreshes __session; its token expires (30 s
    // tokens, and @clerk/backend allows 5 s of skew).
    const token = (await context.cookies()).find((c) => c.name === '__session');
    assert.ok(token, '__session');
    await config.page.close();
    const { exp } = JSON.parse(Buffer.from(token.value.split('.')[1], 'base64url'));
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 + 6_000 - Date.now())));

    config.page = await context.newPage();
    const response = await config.page.goto(`${origin}/`);
    // The app's 307 to the Frontend API's handshake, its 307 back, then the page.
    const chain = [];
    for (let r = response.request(); r; r = r.redirectedFrom()) chain.unshift(new URL(r.url()));
    assert.deepEqual(
      chain.map((u) => `${u.origin}${u.pathname}`),
      [`${origin}/`, `${deployment.origins.fapi}/v1/client/handshake`, `${origin}/`],
    );
    assert.equal(chain[1].searchParams.get('redirect_url'), `${origin}/`);
    assert.ok(chain[2].searchParams.has('__clerk_handshake_nonce'), 'back with a nonce');
    // No visible sign-out: the server renders the user on this very load, and clerk-js agrees.
    assert.equal(response.status(), 200);
    assert.equal(await rendered(config.page), `rendered for ${state.user.id} (${state.session})`);
    assert.equal(await config.page.evaluate(() => window.ready), true);
    assert.equal(await config.page.evaluate(() => window.Clerk.user?.id), state.user.id);
    const fresh = (await context.cookies()).find((c) => c.name === '__session');
    const claims = JSON.parse(Buffer.from(fresh.value.split('.')[1], 'base64url'));
    assert.ok(claims.exp * 1000 > Date.now(), 'a fresh __session');
  });
});

describe('development instance (dev-browser flow)', () => {
  const config = { name: 'development', shots: 0, page: null };
  const requests = [];
  const failures = []; // Frontend API requests that got no answer the page could read
  const state = {};
  let server;
  before(async () => {
    server = deployment.servers.development;
    config.page = await (await browser.newContext()).newPage();
    config.page.on('request', (req) => {
      if (!req.url().startsWith(deployment.origins.devFapi + '/v1/')) return;
      const url = new URL(req.url());
      requests.push({ method: req.method(), path: url.pathname, devBrowser: url.searchParams.get('__clerk_db_jwt') });
    });
    config.page.on('requestfailed', (req) => {
      if (req.url().startsWith(deployment.origins.devFapi)) failures.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
    });
  });
  after(async () => {
    await config.page?.context().close();
  });

  scenario(config, 'POST /v1/dev_browser, then the token on every request', async () => {
    await open(config.page, `${deployment.origins.devApp}/`);
    const made = requests.find((r) => r.method === 'POST' && r.path === '/v1/dev_browser');
    assert.ok(made, 'clerk-js asked for a dev browser');
    const later = requests.slice(requests.indexOf(made) + 1);
    assert.ok(later.length > 0 && later.every((r) => r.devBrowser), 'every later request carries __clerk_db_jwt');
    const kept = (await browserCookies(config.page)).find((c) => c.name.startsWith('__clerk_db_jwt'));
    assert.ok(kept, 'clerk-js keeps the token in a cookie on the app domain');
    state.token = kept.value;
    // clerk-js's PATCH of the environment on a development instance (tunnelled as POST).
    assert.ok(requests.some((r) => r.method === 'POST' && r.path === '/v1/environment'), 'clerk-js patched the environment');
    assert.deepEqual(failures, [], 'every Frontend API answer was readable');
  });

  scenario(config, 'ticket sign-in and getToken()', async () => {
    const { user, ticket } = await userWithTicket(server, 'Dev');
    const result = await signInWithTicket(config.page, ticket);
    assert.equal(result.status, 'complete');
    state.user = user;
    state.session = result.session;
    const jwt = await config.page.evaluate(() => window.Clerk.session.getToken({ skipCache: true }));
    const claims = await verified(server, jwt);
    assert.equal(claims.sid, result.session);
    assert.equal(claims.sub, user.id);
  });

  scenario(config, 'a reload keeps the session (through the dev-browser token)', async () => {
    const read = config.page.waitForRequest((r) => r.method() === 'GET' && new URL(r.url()).pathname === '/v1/client');
    await open(config.page);
    assert.deepEqual(await held(config.page), { user: state.user.id, session: state.session, active: [state.session] });
    const request = await read;
    assert.ok(new URL(request.url()).searchParams.get('__clerk_db_jwt'), 'the client read carries the dev-browser token');
    const { cookie = '' } = await request.allHeaders();
    assert.doesNotMatch(cookie, /(^|; )__client=/, 'no cross-site __client cookie is involved');
  });
});
