// Webhooks as an app receives them: a local receiver verifies every delivery with
// @clerk/backend's verifyWebhook and with the svix package, for a user who signs in on two
// devices, touches, ends one session and is banned; then a receiver that fails the first
// five attempts of every delivery, which must still get every event, in order per session.
// run.sh gives this suite a local-api of its own with a compressed retry schedule.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { verifyWebhook } = require('@clerk/backend/webhooks');
const { Webhook } = require('svix');
const { base, bapi, userWithTicket } = require('./server.cjs');

const userAgent = 'webhooks-suite/1.0 (compat)';

/** A receiver on a free port; `answer(delivery)` gives the status for each request. */
async function receiver(answer) {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const delivery = { headers: { ...req.headers }, body, url: req.url };
      const status = answer(delivery);
      if (status < 300) received.push(delivery);
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status < 300 ? 'ok' : 'not now');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/clerk-webhooks`;
  return { url, received, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Both verifiers an app would use; each throws on a bad signature. */
async function verified(delivery, secret) {
  const request = new Request(`http://receiver.test${delivery.url}`, {
    method: 'POST',
    headers: delivery.headers,
    body: delivery.body,
  });
  const byClerk = await verifyWebhook(request, { signingSecret: secret });
  // svix 2's verify answers nothing: it throws unless a signature matches.
  new Webhook(secret).verify(delivery.body, delivery.headers);
  assert.deepEqual(byClerk, JSON.parse(delivery.body));
  return byClerk;
}

/** A native client (`Authorization` and `_is_native=1`) of the Frontend API. */
function nativeClient() {
  let token = '';
  return async function send(path, body) {
    const sep = path.includes('?') ? '&' : '?';
    const res = await fetch(`${base}${path}${sep}_is_native=1`, {
      method: 'POST',
      headers: {
        'user-agent': userAgent,
        ...(token ? { authorization: token } : {}),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body,
    });
    token = res.headers.get('authorization') || token;
    const json = await res.json();
    assert.ok(res.ok, `POST ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
}

async function signIn(user) {
  const { token } = await bapi('POST', '/v1/sign_in_tokens', { user_id: user.id });
  const send = nativeClient();
  const json = await send('/v1/client/sign_ins', `strategy=ticket&ticket=${encodeURIComponent(token)}`);
  return { send, sessionId: json.response.created_session_id };
}

async function until(what, check, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const ofUser = (userId) => (e) => (e.type.startsWith('user.') ? e.data.id : e.data.user_id) === userId;

test('sign-ins, a touch, an end and a ban arrive once each, verified by verifyWebhook and svix', async () => {
  const rx = await receiver(() => 204);
  try {
    const endpoint = await bapi('POST', '/v1/webhooks/endpoints', { url: rx.url });
    assert.equal(endpoint.object, 'webhook_endpoint');
    assert.match(endpoint.secret, /^whsec_/);
    const listed = await bapi('GET', '/v1/webhooks/endpoints');
    assert.ok(listed.data.some((e) => e.id === endpoint.id && e.secret === undefined), 'secrets are never listed');

    const { user } = await userWithTicket('Wendy');
    const phone = await signIn(user);
    const laptop = await signIn(user);
    await phone.send(`/v1/client/sessions/${phone.sessionId}/touch`);
    await phone.send(`/v1/client/sessions/${phone.sessionId}/end`);
    const banned = await bapi('POST', `/v1/users/${user.id}/ban`);
    assert.equal(banned.banned, true);

    const expected = ['user.created', 'session.created', 'session.created', 'session.ended', 'session.revoked', 'user.updated'];
    const events = [];
    const seen = new Set();
    await until('six events of the user', () => {
      for (const d of rx.received.splice(0)) {
        events.push(d);
        seen.add(d.headers['svix-id']);
      }
      return events.length >= expected.length;
    });
    // Nothing more comes (no event per retry, none for the touch or the sign-ins' user writes).
    await new Promise((r) => setTimeout(r, 1500));
    events.push(...rx.received.splice(0));

    const verifiedEvents = [];
    for (const d of events) verifiedEvents.push({ id: d.headers['svix-id'], event: await verified(d, endpoint.secret) });
    const mine = verifiedEvents.filter(({ event }) => ofUser(user.id)(event));
    assert.deepEqual(mine.map(({ event }) => event.type).sort(), [...expected].sort());
    assert.equal(new Set(mine.map(({ id }) => id)).size, mine.length, 'one delivery per svix-id');
    assert.equal(seen.size, events.length, 'no svix-id delivered twice');

    // A tampered body fails both verifiers.
    const tampered = { ...events[0], body: events[0].body.replace('"object":"event"', '"object":"evil"') };
    await assert.rejects(() => verifyWebhook(new Request('http://receiver.test/', { method: 'POST', headers: tampered.headers, body: tampered.body }), { signingSecret: endpoint.secret }));
    assert.throws(() => new Webhook(endpoint.secret).verify(tampered.body, tampered.headers));

    for (const { event } of mine) {
      assert.equal(event.object, 'event');
      assert.equal(typeof event.timestamp, 'number');
      assert.match(event.instance_id, /^ins_/);
      if (event.type.startsWith('session.')) {
        // The request that made the change: the device's, or the Backend API call's (the ban).
        const by = event.type === 'session.revoked' ? 'node' : userAgent;
        assert.equal(event.event_attributes.http_request.user_agent, by, event.type);
        assert.equal(event.event_attributes.http_request.client_ip, '127.0.0.1');
        assert.equal(event.data.object, 'session');
        assert.equal(event.data.user.id, user.id);
        assert.equal(event.data.user.object, 'user');
        assert.ok(event.data.client_id.startsWith('client_'));
        for (const k of ['id', 'status', 'last_active_at', 'expire_at', 'abandon_at', 'created_at', 'updated_at']) {
          assert.ok(k in event.data, `${event.type} data.${k}`);
        }
      } else {
        assert.equal(event.data.object, 'user');
        assert.equal(event.data.id, user.id);
      }
    }
    const byType = (t) => mine.filter(({ event }) => event.type === t).map(({ event }) => event);
    assert.deepEqual(byType('session.created').map((e) => e.data.status), ['active', 'active']);
    assert.deepEqual(byType('session.ended').map((e) => e.data.id), [phone.sessionId]);
    assert.equal(byType('session.ended')[0].data.status, 'ended');
    assert.deepEqual(byType('session.revoked').map((e) => e.data.id), [laptop.sessionId]);
    assert.equal(byType('session.revoked')[0].data.status, 'revoked');
    assert.equal(byType('user.updated')[0].data.banned, true);
    assert.equal(byType('user.created')[0].data.banned, false);
    // The phone's session was created before it ended, and arrived so.
    const phoneEvents = mine.filter(({ event }) => event.data.id === phone.sessionId).map(({ event }) => event.type);
    assert.deepEqual(phoneEvents, ['session.created', 'session.ended']);

    // Rotation: the new secret signs from now on, the old one beside it for a day.
    const rotated = await bapi('POST', `/v1/webhooks/endpoints/${endpoint.id}/rotate_secret`);
    assert.notEqual(rotated.secret, endpoint.secret);
    await bapi('POST', `/v1/users/${user.id}/unban`);
    await until('user.updated after the rotation', () => rx.received.length > 0);
    const [after] = rx.received.splice(0);
    assert.equal((await verified(after, rotated.secret)).type, 'user.updated');
    assert.equal((await verified(after, endpoint.secret)).data.banned, false);

    // Deleted: nothing more is delivered to it.
    const deleted = await bapi('DELETE', `/v1/webhooks/endpoints/${endpoint.id}`);
    assert.equal(deleted.deleted, true);
    await bapi('PATCH', `/v1/users/${user.id}`, { first_name: 'Wanda' });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(rx.received.length, 0);
  } finally {
    await rx.close();
  }
});

test('a receiver that fails the first five attempts of every delivery still gets every event, in order per session', async () => {
  const attempts = new Map();
  const rx = await receiver((d) => {
    const id = d.headers['svix-id'];
    const n = (attempts.get(id) || 0) + 1;
    attempts.set(id, n);
    return n <= 5 ? 503 : 200;
  });
  try {
    const endpoint = await bapi('POST', '/v1/webhooks/endpoints', {
      url: rx.url,
      events: ['session.created', 'session.ended', 'session.removed', 'session.revoked'],
    });
    const { user } = await userWithTicket('Rita');
    const a = await signIn(user);
    const b = await signIn(user);
    await a.send(`/v1/client/sessions/${a.sessionId}/end`);
    await b.send(`/v1/client/sessions/${b.sessionId}/remove`);

    await until('four session events after the receiver recovers', () => rx.received.length >= 4, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const events = [];
    for (const d of rx.received) events.push(await verified(d, endpoint.secret));
    assert.equal(events.length, 4, 'each once, and no user.* (not subscribed)');
    for (const d of rx.received) assert.equal(attempts.get(d.headers['svix-id']), 6, 'accepted on the sixth attempt');
    const order = (sid) => events.filter((e) => e.data.id === sid).map((e) => e.type);
    assert.deepEqual(order(a.sessionId), ['session.created', 'session.ended']);
    assert.deepEqual(order(b.sessionId), ['session.created', 'session.removed']);
    // Every attempt of a delivery carried the same svix-id: one id per event.
    assert.equal(attempts.size, 4);
    await bapi('DELETE', `/v1/webhooks/endpoints/${endpoint.id}`);
  } finally {
    await rx.close();
  }
});
