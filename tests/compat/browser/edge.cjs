// The browser suite's deployment, on one machine: two local-api processes (a production and a
// development instance) behind one TLS edge that plays the roles a real install has on the
// internet, each on its own host of the site `example.test` (Chromium maps every one of them
// to 127.0.0.1, see browser.test.cjs):
//
//   clerk.example.test      the production Frontend API (FRONTEND_API_URL of the first server)
//   suite.clerk.accounts.dev  the development Frontend API (INSTANCE_TYPE=development), on
//                           another site, as Clerk's development instances are: clerk-js
//                           starts the dev-browser flow only for Frontend API hosts under
//                           Clerk's development domains, and relies on it because the
//                           cross-site cookies of that API are never sent
//   app.example.test        the app; clerk-js talks to clerk.example.test (no proxyUrl)
//   proxied.example.test    the app; clerk-js talks to its own /__clerk path (proxyUrl), which
//                           the edge forwards to the production Frontend API
//   devapp.example.test     the app on the development instance
//   stranger.example.test   the app, on an origin the production instance does not allow
//   ssr.example.test        a server-rendered app (Express with @clerk/express, ssr-app.cjs)
//                           on the production instance
//
// Each app host serves the page at / (app.html) and at /components (components.html: the
// same with @clerk/ui's prebuilt components, components.test.cjs), the clerk-js browser build
// under /clerk-js/ and @clerk/ui's under /clerk-ui/, both from node_modules.
//
// TLS, because that is how the cookies are made in production: `Secure` cookies, and clerk-js
// insists on https without a proxyUrl. The certificate is a throwaway self-signed one for
// those hosts, made by openssl for each run; Chromium trusts exactly that key
// (--ignore-certificate-errors-spki-list), not every certificate.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { ssrApp } = require('./ssr-app.cjs');

// The package's exports map hides dist/, so it is found beside package.json.
const clerkJsDist = path.join(__dirname, '..', 'node_modules', '@clerk', 'clerk-js', 'dist');
// @clerk/ui's browser build (ui.browser.js and its chunks), for the prebuilt components.
const clerkUiDist = path.join(__dirname, '..', 'node_modules', '@clerk', 'ui', 'dist');
const appPage = fs.readFileSync(path.join(__dirname, 'app.html'), 'utf8');
const componentsPage = fs.readFileSync(path.join(__dirname, 'components.html'), 'utf8');
const site = 'example.test';
const devFapiHost = 'suite.clerk.accounts.dev';

/** A self-signed certificate for the site's hosts, and the SPKI pin Chromium takes. */
function certificate(dir) {
  const key = path.join(dir, 'edge.key');
  const cert = path.join(dir, 'edge.crt');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '2', '-subj', `/CN=${site}`, '-addext', `subjectAltName=DNS:${site},DNS:*.${site},DNS:${devFapiHost}`,
    '-keyout', key, '-out', cert,
  ], { stdio: 'pipe' });
  const pem = fs.readFileSync(cert);
  const spki = new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return {
    key: fs.readFileSync(key),
    cert: pem,
    spkiPin: crypto.createHash('sha256').update(spki).digest('base64'),
  };
}

/** Starts local-api with `env` on a free port; resolves to its http URL once it is ready. */
function startLocalApi(bin, env, logFile) {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(logFile, 'w');
    const child = spawn(bin, ['--port', '0', '--in-memory'], {
      env: { PATH: process.env.PATH, RUST_LOG: 'warn', ...env },
      stdio: ['ignore', 'pipe', log],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const ready = /^local-api: ready on (\S+)$/m.exec(out);
      if (ready) resolve({ child, url: ready[1] });
    });
    child.on('exit', (code) => reject(new Error(`local-api exited (${code}); see ${logFile}`)));
    setTimeout(() => reject(new Error(`local-api did not start in 20 s; see ${logFile}`)), 20000).unref();
  });
}

/** Forwards a request to `target` (an http URL) at `pathname`, as a reverse proxy would. */
function forward(req, res, target, pathname) {
  const url = new URL(pathname, target);
  const headers = { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress, 'x-forwarded-proto': 'https' };
  const upstream = http.request(url, { method: req.method, headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.rawHeaders);
    answer.pipe(res);
  });
  upstream.on('error', () => {
    res.writeHead(502).end();
  });
  req.pipe(upstream);
}

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };

/**
 * Serves a browser build from `dist`: the clerk-js one (the script and the chunks it loads
 * beside it) by default, or @clerk/ui's.
 */
function serveClerkJs(res, pathname, dist = clerkJsDist) {
  const file = path.join(dist, path.basename(pathname));
  if (!file.startsWith(dist + path.sep) || !fs.existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
}

/**
 * A publishable key naming `host` as the Frontend API: pk_<live|test>_ + base64("<host>$"),
 * padding kept, as the service derives it: Clerk's SDKs name their cookies with a suffix
 * made from the key's exact text, and the handshake sets them under that suffix.
 */
function publishableKey(kind, host) {
  return `pk_${kind}_` + Buffer.from(`${host}$`).toString('base64');
}

/**
 * Starts the deployment. `bin` is the local-api binary, `secretKey` the Backend API key both
 * instances take, `dir` a folder for the certificate and the server logs. Resolves to the
 * origins, the servers' direct URLs (for Backend API calls), the SPKI pin and stop().
 */
async function startDeployment({ bin, secretKey, dir, env = {} }) {
  const tls = certificate(dir);
  const routes = new Map(); // host -> handler(req, res)
  const edge = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const host = (req.headers.host || '').replace(/:\d+$/, '');
    const handle = routes.get(host);
    if (handle) handle(req, res);
    else res.writeHead(421).end();
  });
  await new Promise((resolve) => edge.listen(0, '127.0.0.1', resolve));
  const port = edge.address().port;
  const origin = (name) => `https://${name}.${site}:${port}`;
  const origins = {
    fapi: origin('clerk'),
    devFapi: `https://${devFapiHost}`,
    app: origin('app'),
    proxied: origin('proxied'),
    devApp: origin('devapp'),
    stranger: origin('stranger'),
    ssr: origin('ssr'),
  };
  const proxyUrl = `${origins.proxied}/__clerk`;

  const servers = [];
  const start = async (name, extra) => {
    const server = await startLocalApi(bin, { BACKEND_API_SECRET_KEY: secretKey, ...env, ...extra }, path.join(dir, `${name}.log`));
    servers.push(server.child);
    return server.url;
  };
  const production = await start('production', {
    FRONTEND_API_URL: origins.fapi,
    ALLOWED_ORIGINS: `${origins.app},${origins.proxied},${origins.ssr}`,
  });
  const development = await start('development', {
    FRONTEND_API_URL: origins.devFapi,
    ALLOWED_ORIGINS: origins.devApp,
    INSTANCE_TYPE: 'development',
  });

  const fapiHost = new URL(origins.fapi).host;
  // The app: one page, told by its host which instance it belongs to and how to reach it.
  const app = (config) => (req, res) => {
    const { pathname } = new URL(req.url, 'https://x');
    if (config.proxy && pathname.startsWith('/__clerk/')) {
      forward(req, res, production, pathname.slice('/__clerk'.length) + new URL(req.url, 'https://x').search);
    } else if (pathname.startsWith('/clerk-js/')) {
      serveClerkJs(res, pathname);
    } else if (pathname.startsWith('/clerk-ui/')) {
      serveClerkJs(res, pathname, clerkUiDist);
    } else if (pathname === '/' || pathname === '/components') {
      const page = (pathname === '/' ? appPage : componentsPage)
        .replace('{{PUBLISHABLE_KEY}}', config.publishableKey)
        .replace('{{PROXY_URL}}', config.proxy ? proxyUrl : '');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
    } else {
      res.writeHead(404).end();
    }
  };
  const fapi = (target) => (req, res) => forward(req, res, target, req.url);
  routes.set(`clerk.${site}`, fapi(production));
  routes.set(devFapiHost, fapi(development));
  routes.set(`app.${site}`, app({ publishableKey: publishableKey('live', fapiHost) }));
  routes.set(`proxied.${site}`, app({ publishableKey: publishableKey('live', fapiHost), proxy: true }));
  routes.set(`stranger.${site}`, app({ publishableKey: publishableKey('live', fapiHost) }));
  routes.set(`devapp.${site}`, app({ publishableKey: publishableKey('test', new URL(origins.devFapi).host) }));
  const ssrKey = publishableKey('live', fapiHost);
  const ssr = ssrApp({
    publishableKey: ssrKey,
    secretKey,
    apiUrl: production,
    page: appPage.replace('{{PUBLISHABLE_KEY}}', ssrKey).replace('{{PROXY_URL}}', ''),
  });
  routes.set(`ssr.${site}`, (req, res) => {
    const { pathname } = new URL(req.url, 'https://x');
    if (pathname.startsWith('/clerk-js/')) serveClerkJs(res, pathname);
    else ssr(req, res);
  });

  return {
    origins,
    proxyUrl,
    servers: { production, development },
    spkiPin: tls.spkiPin,
    // Clerk's cookie-name suffix for the production instance's publishable key.
    cookieSuffix: crypto
      .createHash('sha1')
      .update(publishableKey('live', fapiHost))
      .digest('base64')
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .slice(0, 8),
    hostRules: `MAP *.${site} 127.0.0.1, MAP ${devFapiHost}:443 127.0.0.1:${port}`,
    async stop() {
      for (const child of servers) child.kill();
      edge.closeAllConnections();
      await new Promise((resolve) => edge.close(resolve));
    },
  };
}

module.exports = { startDeployment, tmpdir: () => fs.mkdtempSync(path.join(os.tmpdir(), 'browser-suite-')) };
