// A server-rendered app on Express with @clerk/express's clerkMiddleware: each page says, as
// rendered by the server, which user it belongs to, and carries clerk-js like the other
// pages (app.html). The edge (edge.cjs) serves it on its own host.
'use strict';

const express = require('express');
const { clerkMiddleware, createClerkClient, getAuth } = require('@clerk/express');

/** The app: `page` is app.html with the publishable key filled in. */
function ssrApp({ publishableKey, secretKey, apiUrl, page }) {
  const app = express();
  // The Backend API of the service (the handshake nonce is read there), with the secret key:
  // what CLERK_SECRET_KEY and CLERK_API_URL would give it from the environment.
  const clerkClient = createClerkClient({ publishableKey, secretKey, apiUrl });
  app.use(clerkMiddleware({ clerkClient, publishableKey, secretKey }));
  app.get('/', (req, res) => {
    const { userId, sessionId } = getAuth(req);
    const rendered = `<p id="ssr">rendered for ${userId ?? 'nobody'} (${sessionId ?? 'no session'})</p>`;
    res
      .set('cache-control', 'no-store')
      .type('html')
      .send(page.replace('<body>', `<body>\n    ${rendered}`));
  });
  return app;
}

module.exports = { ssrApp };
