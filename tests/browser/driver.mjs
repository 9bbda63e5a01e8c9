// Drives Debian's headless Chromium through one scenario of tests/browser.rs.
//
// The Rust tests run it; by hand it is `node driver.mjs <scenario> <base-url> [<options JSON>]`
// against a running ssecast, answering each step with a line on stdin (`{}` will do for most).
// It speaks JSON lines: at each point where the test must act (publish, stop the server, cut the
// network) it prints `{"step": "<name>", ...}` on stdout and waits for one line on stdin; its last
// line is `{"step": "done", ...}` with what the page showed. The driver only waits, with
// deadlines, for the page to reach each state and reports what it saw; the test asserts.
// Exit status: 0 after "done", 1 when a wait fails (the reason is on stderr), 2 when the whole
// scenario overruns, 3 when the test went away (stdin closed).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

// Debian's Chromium, or the browser `CHROMIUM` names (the Rust test passes it on).
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const WAIT_MS = 15_000; // one state of the page
const SCENARIO_MS = 90_000; // a whole scenario, should the test never answer

// ---- talking to the test --------------------------------------------------------

const replies = [];
const waiting = [];
let stdinClosed = false;
const stdin = createInterface({ input: process.stdin });
stdin.on('line', (line) => {
  const reply = JSON.parse(line);
  if (waiting.length) waiting.shift()(reply);
  else replies.push(reply);
});
stdin.on('close', () => {
  stdinClosed = true;
  while (waiting.length) waiting.shift()(null);
  // The test went away (it failed, or was killed): close the browser rather than wait.
  if (!finishing) stop(3);
});

/** Reports a step to the test and resolves with its answer. */
async function step(name, report = {}) {
  process.stdout.write(JSON.stringify({ step: name, ...report }) + '\n');
  const reply = replies.length
    ? replies.shift()
    : stdinClosed ? null : await new Promise((resolve) => waiting.push(resolve));
  if (reply === null) throw Object.assign(new Error(`the test went away at step ${name}`), { code: 3 });
  return reply;
}

// ---- reading the demo page ------------------------------------------------------

/** The log's entries, panel by panel in the page's order, each panel's in arrival order (the
 *  page shows the newest first). `panel` is the topic of the panel an entry is in (null when it
 *  is in none), `topic` the entry's own. */
function entries(page) {
  return page.$$eval('#log .entry', (lis) => {
    const panels = [...document.querySelectorAll('#log [data-topic]:not(.entry)')];
    return lis
      .map((li, n) => ({ li, n, panel: li.parentElement.closest('#log [data-topic]') }))
      .sort((a, b) => panels.indexOf(a.panel) - panels.indexOf(b.panel) || b.n - a.n)
      .map(({ li, panel }) => ({
        panel: panel ? panel.dataset.topic ?? null : null,
        topic: li.dataset.topic ?? null,
        id: li.dataset.id,
        type: li.dataset.type,
        data: li.querySelector('.data').textContent,
        hidden: li.hidden,
      }));
  });
}

/** The topics of the log's panels, in the page's order. */
function panels(page) {
  return page.$$eval('#log [data-topic]:not(.entry)', (els) => els.map((el) => el.dataset.topic));
}

function waitEntries(page, count) {
  return page.waitForFunction(
    (n) => document.querySelectorAll('#log .entry').length >= n, count, { timeout: WAIT_MS });
}

function waitState(page, state) {
  return page.waitForSelector(`#state[data-state="${state}"]`, { timeout: WAIT_MS });
}

/** Records every banner the page shows, in `window.banners`: a state can come and go between
 *  two looks (the "back" banner hides itself after 5 s). */
function watchBanner(page) {
  return page.evaluate(() => {
    window.banners = [];
    const banner = document.querySelector('#banner');
    const record = () => {
      const last = window.banners[window.banners.length - 1];
      const shown = banner.hidden ? null : { kind: banner.className, text: banner.textContent };
      if (shown && !(last && last.kind === shown.kind && last.text === shown.text)) {
        window.banners.push(shown);
      }
    };
    new MutationObserver(record).observe(banner, {
      attributes: true, childList: true, characterData: true, subtree: true,
    });
    record();
  });
}

/** Waits until the page has shown a banner of `kind` (`down` or `up`) since `watchBanner`. */
function waitBanner(page, kind) {
  return page.waitForFunction(
    (k) => window.banners.some((b) => b.kind === k), kind, { timeout: WAIT_MS });
}

/** Publishes from the page's own form and returns what the page says about it. In the
 *  Mercure mode `topic` goes in the Mercure topics field (one per line), and `fields` may
 *  set id, retry, private and token. */
async function publishFromForm(page, topic, data, event = '', fields = {}) {
  const mercure = await page.evaluate(() => document.body.dataset.mode === 'mercure');
  await page.fill(mercure ? '#m-pub-topic' : '#pub-topic', topic);
  await page.fill('#pub-event', event);
  await page.fill('#pub-data', data);
  await page.fill('#pub-id', fields.id ?? '');
  await page.fill('#pub-retry', fields.retry ?? '');
  await page.setChecked('#pub-private', fields.private ?? false);
  await page.fill('#pub-token', fields.token ?? '');
  await page.$eval('#pub-result', (p) => { p.textContent = ''; });
  await page.click('#publish');
  await page.waitForFunction(
    () => document.querySelector('#pub-result').textContent !== '', null, { timeout: WAIT_MS });
  return page.$eval('#pub-result', (p) => ({
    ok: p.className === 'ok',
    text: p.textContent,
    id: p.dataset.id ?? null,
  }));
}

/** Waits until every panel's stream is open; failing, says what the panels' errors say. */
async function waitOpen(page) {
  try {
    await waitState(page, 'open');
  } catch (err) {
    const said = await page.$$eval('#log .panel', (panels) => panels.map((p) =>
      `${p.dataset.topic}: ${p.querySelector('.pstate').textContent} `
        + `${p.querySelector('.perror').textContent}`)).catch(() => []);
    throw new Error(`the page's streams did not open: ${said.join('; ') || err.message}`);
  }
}

// ---- scenarios --------------------------------------------------------------------
// Each gets (page, base URL, options) and returns the "done" report.

const scenarios = {
  /** Subscribe, publish from the form, then the test publishes with curl. */
  async publish(page, base) {
    await page.goto(`${base}/?topic=news`);
    await waitState(page, 'open');
    await step('subscribed');
    const form = await publishFromForm(page, 'news', 'from the form');
    await waitEntries(page, 1);
    await step('published', { form });
    await waitEntries(page, 2);
    return { form, entries: await entries(page) };
  },

  /** The server stops and starts again on the same port; each topic's stream reconnects by
   *  itself and its panel shows its own gap. */
  async restart(page, base) {
    await page.goto(`${base}/?topic=news&topic=sport`);
    await waitState(page, 'open');
    await watchBanner(page);
    await step('subscribed'); // the test publishes one event to each topic
    await waitEntries(page, 2);
    await step('received'); // the test stops the server
    await waitState(page, 'reconnecting');
    await waitBanner(page, 'down');
    await step('down'); // the test starts a new server on the same port
    await page.waitForFunction(
      () => document.querySelectorAll('#log .entry.gap').length >= 2, null, { timeout: WAIT_MS });
    await waitState(page, 'open');
    await step('reconnected'); // the test publishes one more event
    await waitEntries(page, 5);
    await waitBanner(page, 'up');
    return {
      banners: await page.evaluate(() => window.banners),
      panels: await panels(page),
      entries: await entries(page),
    };
  },

  /** Behind nginx, each node restarts in turn while events are published; the page misses
   *  none. `events` is how many the test publishes. */
  async rolling(page, base, { events }) {
    await page.goto(`${base}/?topic=news`);
    await waitState(page, 'open');
    await step('subscribed'); // the test publishes, restarting each node meanwhile
    await page.waitForFunction(
      (n) => document.querySelectorAll('#log .entry').length >= n, events, { timeout: 60_000 });
    return { entries: await entries(page) };
  },

  /** The network drops the stream while the server stays up; the page resumes from history. */
  async catchup(page, base) {
    await page.goto(`${base}/?topic=news`);
    await waitState(page, 'open');
    await watchBanner(page);
    await step('subscribed'); // the test publishes one event
    await waitEntries(page, 1);
    await step('received'); // the test cuts the network and publishes while it is down
    await waitState(page, 'reconnecting');
    await waitBanner(page, 'down');
    await step('down'); // the test restores the network
    await waitState(page, 'open');
    await step('reconnected'); // the test publishes one more event, live
    await waitEntries(page, 4);
    await waitBanner(page, 'up');
    return { banners: await page.evaluate(() => window.banners), entries: await entries(page) };
  },

  /** One page, many EventSources over distinct host names, every one gets every event. */
  async fanout(page, base, { sources, hosts, topic, events }) {
    // A blank page of the server's own: the EventSources are cross-origin, hence --cors-origin.
    await page.goto(`${base}/healthz`);
    const port = new URL(base).port;
    await page.evaluate(({ sources, hosts, topic, port }) => {
      window.fan = { opened: 0, errors: 0, received: [] };
      for (let i = 0; i < sources; i++) {
        // Chromium resolves *.localhost to loopback itself, and allows 6 HTTP/1.1
        // connections per host: so a host name for every few sources.
        const url = `http://h${i % hosts}.localhost:${port}/events?topic=${topic}`;
        const source = new EventSource(url);
        const ids = [];
        window.fan.received.push(ids);
        source.onopen = () => { window.fan.opened++; };
        source.onerror = () => { window.fan.errors++; };
        source.onmessage = (e) => { ids.push(e.lastEventId); };
      }
    }, { sources, hosts, topic, port });
    await page.waitForFunction((n) => window.fan.opened === n, sources, { timeout: WAIT_MS });
    await step('open', { opened: sources }); // the test publishes the events
    await page.waitForFunction(
      (n) => window.fan.received.every((ids) => ids.length >= n), events, { timeout: WAIT_MS },
    ).catch(() => { /* report what arrived; the test says what is missing */ });
    const fan = await page.evaluate(() => window.fan);
    return fan;
  },

  /** Five topics: a note says only the first four are subscribed, each in a panel of its own.
   *  Then the filter and the clear button, across panels. */
  async topics(page, base) {
    await page.goto(`${base}/?topic=news,sport&topic=alerts&topic=ops&topic=extra`);
    await waitState(page, 'open');
    const note = await page.$eval('#topics-note', (p) => ({ shown: !p.hidden, text: p.textContent }));
    await step('subscribed', { note, panels: await panels(page) }); // the test publishes
    await waitEntries(page, 3);
    await page.waitForFunction(
      () => document.querySelector('#subscribers').textContent === '4', null, { timeout: WAIT_MS });
    // Publishing from the form still works with four streams open.
    const form = await publishFromForm(page, 'ops', 'from the form');
    await waitEntries(page, 4);
    const received = await entries(page);
    await page.fill('#filter', 'BOTH');
    const filtered = await entries(page);
    await page.fill('#filter', '');
    const unfiltered = await entries(page);
    await page.click('#clear');
    const cleared = await entries(page);
    return {
      state: await page.textContent('#state'),
      topicsValue: await page.inputValue('#topics'),
      search: await page.evaluate(() => location.search),
      subscribers: await page.textContent('#subscribers'),
      form,
      panels: await panels(page),
      entries: received,
      filtered,
      unfiltered,
      cleared,
    };
  },

  /** A page whose `mercureAuthorization` cookie holds a subscriber token receives private
   *  events: the browser sends the cookie with its EventSource request by itself. */
  async private(page, base, { token, topic }) {
    await page.context().addCookies([{ name: 'mercureAuthorization', value: token, url: base }]);
    await page.goto(`${base}/healthz`);
    await page.evaluate((topic) => {
      window.stream = { opened: false, errors: 0, got: [] };
      const source = new EventSource(`/events?topic=${encodeURIComponent(topic)}`);
      source.onopen = () => { window.stream.opened = true; };
      source.onerror = () => { window.stream.errors++; };
      source.onmessage = (e) => { window.stream.got.push({ id: e.lastEventId, data: e.data }); };
    }, topic);
    await page.waitForFunction(() => window.stream.opened, null, { timeout: WAIT_MS });
    await step('open'); // the test publishes a public event, then a private one
    await page.waitForFunction(() => window.stream.got.length >= 2, null, { timeout: WAIT_MS });
    return await page.evaluate(() => window.stream);
  },

  /** Events of any type show with their type, with no type named beforehand: the test
   *  publishes some with curl and JSON, the page one from its form. */
  async types(page, base) {
    await page.goto(`${base}/?topic=news`);
    await waitOpen(page);
    await step('subscribed'); // the test publishes events of its own types
    await waitEntries(page, 2);
    const form = await publishFromForm(page, 'news', 'from the form', 'note');
    await waitEntries(page, 3);
    return { form, entries: await entries(page) };
  },

  /** What history holds shows when the page opens. `held` is how many events it holds. */
  async history(page, base, { held }) {
    await page.goto(`${base}/?topic=news`);
    await waitOpen(page);
    await waitEntries(page, held);
    await step('shown', { entries: await entries(page) }); // the test publishes one more
    await waitEntries(page, held + 1);
    return { entries: await entries(page) };
  },

  /** The Mercure mode: subscribe with `selector` (as `syntax`: topic or match_urlpattern),
   *  then publish from the page's form to `topic` with the publisher `token`, once with `id`
   *  and `type`, once with neither. `held` events are in history before the page opens. */
  async mercure(page, base, { syntax, selector, topic, token, id, type, held = 0 }) {
    await page.goto(`${base}/`);
    await waitOpen(page);
    await page.click('#mode-mercure');
    await page.selectOption('#m-syntax', syntax);
    await page.fill('#m-selectors', selector);
    await page.click('#subscribe');
    await waitOpen(page);
    await waitEntries(page, held);
    await step('subscribed', { panels: await panels(page) }); // the test waits for the stream
    const given = await publishFromForm(page, topic, 'given an id', type, { id, token });
    await waitEntries(page, held + 1);
    const made = await publishFromForm(page, topic, 'id made by the hub', '', { token });
    await waitEntries(page, held + 2);
    const refused = await publishFromForm(page, topic, 'no token');
    return {
      given,
      made,
      refused,
      query: await page.evaluate(() => [...new URLSearchParams(location.search)]),
      panels: await panels(page),
      entries: await entries(page),
    };
  },

  /** A plain EventSource on /.well-known/mercure with one `selector` (a [name, value] query
   *  pair), made on the demo page, and updates to `topic` published with fetch and the
   *  publisher `token`: public, private, public. */
  async mercureSource(page, base, { topic, selector, token }) {
    await page.goto(`${base}/`);
    await page.evaluate((selector) => {
      window.stream = { opened: false, errors: 0, got: [] };
      const source = new EventSource(`/.well-known/mercure?${new URLSearchParams([selector])}`);
      source.onopen = () => { window.stream.opened = true; };
      source.onerror = () => { window.stream.errors++; };
      const got = (e) => { window.stream.got.push({ id: e.lastEventId, type: e.type, data: e.data }); };
      source.onmessage = got;
      source.addEventListener('update', got);
    }, selector);
    await page.waitForFunction(() => window.stream.opened, null, { timeout: WAIT_MS });
    await step('open'); // the test waits for the subscriber
    const answers = await page.evaluate(async ({ topic, token }) => {
      const publish = async (fields, bearer) => {
        const res = await fetch('/.well-known/mercure', {
          method: 'POST',
          headers: bearer ? { Authorization: `Bearer ${bearer}` } : {},
          body: new URLSearchParams([['topic', topic], ...fields]),
        });
        return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
      };
      return [
        await publish([['data', 'no token'], ['id', 'anonymous-1']], null),
        await publish([['data', 'shipped'], ['id', 'public-1']], token),
        await publish([['data', 'card ending 4242'], ['id', 'private-1'], ['private', 'on']], token),
        await publish([['data', 'delivered'], ['id', 'public-2'], ['type', 'update']], token),
      ];
    }, { topic, token });
    await page.waitForFunction(() => window.stream.got.length >= 2, null, { timeout: WAIT_MS });
    return { answers, ...await page.evaluate(() => window.stream) };
  },

  /** The demo page with a subscriber `token`, from the `mercureAuthorization` cookie (`via`
   *  cookie) or pasted into its token field (`via` field), shows private events of `topic`;
   *  it publishes them from its form with the `publisher` token: public, private, public. */
  async privatePage(page, base, { token, publisher, topic, via }) {
    if (via === 'cookie') {
      await page.context().addCookies([{ name: 'mercureAuthorization', value: token, url: base }]);
    }
    await page.goto(`${base}/?topic=${encodeURIComponent(topic)}`);
    await waitOpen(page);
    if (via === 'field') {
      await page.fill('#sub-token', token);
      await page.click('#subscribe'); // opens the stream again, with the token
      await waitOpen(page);
    }
    await step('open'); // the test waits for the page's one stream
    const forms = [];
    for (const [id, data, isPrivate] of [
      ['public-1', 'shipped', false],
      ['private-1', 'card ending 4242', true],
      ['public-2', 'delivered', false],
    ]) {
      forms.push(await publishFromForm(page, topic, data, '', { id, private: isPrivate, token: publisher }));
    }
    await waitEntries(page, 3);
    return { forms, entries: await entries(page) };
  },

  /** The demo page with a few events in each of three topics' panels, as a picture. */
  async screenshot(page, base, { path }) {
    await page.goto(`${base}/?topic=news&topic=sport&topic=alerts`);
    await waitState(page, 'open');
    await step('subscribed'); // the test publishes a few events
    await waitEntries(page, 8);
    const form = await publishFromForm(page, 'alerts', 'Deploy finished: all green');
    await waitEntries(page, 9);
    await page.waitForFunction(
      () => document.querySelector('#subscribers').textContent === '3', null, { timeout: WAIT_MS });
    await page.waitForFunction(() => document.querySelectorAll('#stats div').length > 0);
    await page.evaluate(() => window.scrollTo(0, 0)); // clicking Publish scrolled down to it
    await page.screenshot({ path });
    return { form, panels: await panels(page), entries: await entries(page), path };
  },
};

// ---- main ---------------------------------------------------------------------------

let context = null; // the browser, once launched
let profile = null; // its fresh user data dir
let finishing = false; // past the report: stdin closing is the test's goodbye, not a failure
let stopping = false;

/** Closes the browser, removes its profile and exits with `code`; the first call wins. */
async function stop(code) {
  if (stopping) return;
  stopping = true;
  finishing = true;
  stdin.close();
  if (context) await context.close().catch(() => {});
  if (profile) rmSync(profile, { recursive: true, force: true });
  process.exit(code);
}

async function main() {
  const [name, base, options = '{}'] = process.argv.slice(2);
  const scenario = scenarios[name];
  if (!scenario || !base) {
    throw new Error(`usage: node driver.mjs <${Object.keys(scenarios).join('|')}> <base-url> [options]`);
  }
  profile = mkdtempSync(join(tmpdir(), 'ssecast-chromium-'));
  setTimeout(() => {
    console.error(`scenario ${name} overran ${SCENARIO_MS} ms`);
    stop(2);
  }, SCENARIO_MS).unref();
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1200, height: 800 },
  });
  const page = context.pages()[0] ?? await context.newPage();
  // What the page itself reports: its errors, and the Last-Event-ID of each answered subscribe.
  const problems = [];
  const subscribes = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('response', (response) => {
    // The fan-out scenario makes hundreds of subscribes; they are not reported.
    const request = response.request();
    const url = new URL(request.url());
    const path = url.pathname;
    if (name === 'fanout' || request.method() !== 'GET') return;
    if (path !== '/events' && path !== '/.well-known/mercure') return;
    // allHeaders() has what went on the wire (Blink adds an EventSource's Last-Event-ID below
    // the page), known for a request that was answered; attempts that failed to connect are
    // not reported.
    const unknown = new Promise((resolve) => setTimeout(resolve, 2000, null));
    subscribes.push(Promise.race([request.allHeaders(), unknown]).then((headers) => ({
      url: request.url(),
      path,
      topics: url.searchParams.getAll('topic'),
      patterns: url.searchParams.getAll('match_urlpattern'),
      status: response.status(),
      lastEventId: headers ? headers['last-event-id'] ?? null : '(headers unknown)',
      authorization: headers ? headers.authorization ?? null : '(headers unknown)',
    })));
  });
  const report = await scenario(page, base, JSON.parse(options));
  if (name !== 'fanout') report.subscribes = await Promise.all(subscribes);
  const done = { problems, ...report };
  finishing = true;
  process.stdout.write(JSON.stringify({ step: 'done', ...done }) + '\n');
}

main().then(
  () => stop(0),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    stop(err && err.code === 3 ? 3 : 1);
  },
);
