// ssecast demo page: subscribe, log events, publish, poll stats. No build step.
//
// An SSE event does not say which topic it came from, so the page opens one EventSource per
// topic and shows each topic's events in a panel of its own. Each EventSource reconnects and
// resumes (Last-Event-ID) on its own, so each panel also shows its own `gap`.
'use strict';

const $ = (id) => document.getElementById(id);
const MAX_ENTRIES = 500; // per panel
// A browser opens at most 6 HTTP/1.1 connections per host: one stream per topic, and the stats
// polls and publishes need one or two more.
const MAX_TOPICS = 4;
// A stream the browser gave up on (an error response: a proxy's 502 while a node restarts, say)
// is opened again by the page after this long, doubling up to the most, resuming after the last
// event it showed.
const REOPEN_FIRST_MS = 1000;
const REOPEN_MOST_MS = 30000;
const types = new Set(['message']); // event types we listen for ('gap' is handled separately)
/** topic -> { topic, source, state, lastId, panel, list, count, badge, onEvent, onGap } */
const feeds = new Map();
let statsDown = false; // the last stats poll failed
let wasDown = false;   // we showed the "server gone" banner, so say when it is back
let bannerTimer = 0;

const splitList = (s) => [...new Set(s.split(',').map((t) => t.trim()).filter(Boolean))];
const quoted = (list) => list.map((t) => `“${t}”`).join(', ');

function clock(d = new Date()) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// ---- connection state and banner -------------------------------------------

// The overall state is the worst of the topics' states.
const RANK = { open: 0, connecting: 1, reconnecting: 2, closed: 3 };

function setState(s) {
  $('state').textContent = s;
  $('state').dataset.state = s;
}

function updateState() {
  let worst = 'open';
  for (const f of feeds.values()) if (RANK[f.state] > RANK[worst]) worst = f.state;
  setState(worst);
  $('state').title = [...feeds.values()].map((f) => `${f.topic}: ${f.state}`).join('\n');
}

function setFeedState(feed, s) {
  feed.state = s;
  feed.badge.textContent = s;
  feed.badge.dataset.state = s;
  updateState();
  updateBanner();
}

function updateBanner() {
  const b = $('banner');
  clearTimeout(bannerTimer);
  const all = [...feeds.values()];
  const closed = all.filter((f) => f.state === 'closed').map((f) => f.topic);
  const down = all.some((f) => f.state === 'reconnecting');
  if (closed.length || down || statsDown) {
    wasDown = true;
    b.className = 'down';
    // One text while streams drop and come back one by one, rather than one per change.
    b.textContent = closed.length
      ? `The event stream of ${closed.length === 1 ? 'topic' : 'topics'} ${quoted(closed)} got an error response; trying again, less and less often. If it keeps failing, check the topics.`
      : 'The server is unreachable. Retrying automatically…';
    b.hidden = false;
  } else if (wasDown) {
    wasDown = false;
    b.className = 'up';
    b.textContent = 'The server is back. Missed events are replayed from history when possible.';
    b.hidden = false;
    bannerTimer = setTimeout(() => { b.hidden = true; }, 5000);
  } else {
    b.hidden = true;
  }
}

// ---- per-topic panels and the event log -----------------------------------------

function filterQuery() {
  return $('filter').value.trim().toLowerCase();
}

function matches(li, q) {
  return !q || li.textContent.toLowerCase().includes(q);
}

/** "3 events", or "1 of 3 shown" while the filter hides some. */
function updateCount(feed) {
  const all = feed.list.children.length;
  let shown = 0;
  for (const li of feed.list.children) if (!li.hidden) shown++;
  feed.count.textContent = shown === all
    ? `${all} event${all === 1 ? '' : 's'}`
    : `${shown} of ${all} shown`;
}

function makePanel(feed) {
  const panel = document.createElement('section');
  panel.className = 'panel';
  panel.dataset.topic = feed.topic;
  panel.setAttribute('aria-label', `Topic ${feed.topic}`);
  const head = document.createElement('header');
  head.className = 'panel-head';
  const name = document.createElement('h3');
  name.textContent = feed.topic;
  name.title = feed.topic;
  const badge = document.createElement('span');
  badge.className = 'pstate';
  const count = document.createElement('span');
  count.className = 'count';
  head.append(name, badge, count);
  const list = document.createElement('ol');
  list.className = 'entries';
  list.setAttribute('aria-label', `Events on ${feed.topic}`);
  panel.append(head, list);
  Object.assign(feed, { panel, list, count, badge });
  updateCount(feed);
}

function addEntry(feed, { id, type, data, note }) {
  const li = document.createElement('li');
  li.className = 'entry' + (type === 'gap' ? ' gap' : '');
  li.dataset.id = id;
  li.dataset.type = type;
  li.dataset.topic = feed.topic;
  const head = document.createElement('div');
  head.className = 'meta';
  // A gap event usually has no id of its own (lastEventId is then the previous one), so show none.
  const shownId = type === 'gap' ? '' : (id ? `#${id}` : '(no id)');
  for (const [cls, text] of [['time', clock()], ['id', shownId], ['type', type]]) {
    if (!text) continue;
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    head.append(span);
  }
  li.append(head);
  if (note) {
    const p = document.createElement('p');
    p.className = 'note';
    p.textContent = note;
    li.append(p);
  }
  const pre = document.createElement('pre');
  pre.className = 'data';
  pre.textContent = data;
  li.append(pre);

  li.hidden = !matches(li, filterQuery());
  feed.list.prepend(li);
  while (feed.list.children.length > MAX_ENTRIES) feed.list.lastElementChild.remove();
  updateCount(feed);
  $('log-empty').hidden = true;
}

function gapNote(e) {
  let asked = '?', oldest = null;
  try {
    const g = JSON.parse(e.data);
    asked = g.lastEventId;
    oldest = g.oldestId;
  } catch (_) { /* show the raw data anyway */ }
  return oldest == null
    ? `Gap: history could not fill in. Asked to resume after ${asked}, but the server holds no history (it may have restarted). Some events were missed.`
    : `Gap: history could not fill in. Asked to resume after ${asked}, oldest event still held is ${oldest}. Events in between were missed.`;
}

function listenFor(type) {
  if (type === 'gap') return; // onGap already shows these
  types.add(type);
  // The same function twice is a no-op.
  for (const f of feeds.values()) if (f.source) f.source.addEventListener(type, f.onEvent);
  $('listening').textContent = [...types, 'gap'].join(', ');
}

// ---- subscribe ----------------------------------------------------------------

/** Opens the feed's EventSource. `resumeAfter` (an event id) asks history for what came after
 *  it: a new EventSource has no Last-Event-ID of its own. */
function openFeed(feed, resumeAfter) {
  const qs = new URLSearchParams([['topic', feed.topic]]);
  if (resumeAfter) qs.set('lastEventId', resumeAfter);
  const source = new EventSource('events?' + qs);
  feed.source = source;
  const current = () => feed.source === source && feeds.get(feed.topic) === feed;
  source.onopen = () => {
    if (!current()) return;
    feed.reopenMs = REOPEN_FIRST_MS;
    setFeedState(feed, 'open');
  };
  source.onerror = () => {
    if (!current()) return;
    if (source.readyState !== EventSource.CLOSED) {
      setFeedState(feed, 'reconnecting'); // the browser retries by itself
      return;
    }
    // The browser gives up for good after an error response: open it again later.
    setFeedState(feed, 'closed');
    clearTimeout(feed.reopenTimer);
    feed.reopenTimer = setTimeout(() => {
      if (current()) openFeed(feed, feed.lastId);
    }, feed.reopenMs);
    feed.reopenMs = Math.min(feed.reopenMs * 2, REOPEN_MOST_MS);
  };
  source.addEventListener('gap', feed.onGap);
  types.forEach((t) => source.addEventListener(t, feed.onEvent));
  setFeedState(feed, 'connecting');
}

function closeFeed(feed) {
  clearTimeout(feed.reopenTimer);
  if (feed.source) feed.source.close();
  feed.source = null;
}

function newFeed(topic) {
  const feed = { topic, source: null, state: 'connecting', lastId: '', reopenMs: REOPEN_FIRST_MS, reopenTimer: 0 };
  feed.onEvent = (e) => {
    if (e.lastEventId) feed.lastId = e.lastEventId;
    addEntry(feed, { id: e.lastEventId, type: e.type, data: e.data });
  };
  feed.onGap = (e) => {
    addEntry(feed, { id: e.lastEventId, type: 'gap', data: e.data, note: gapNote(e) });
  };
  makePanel(feed);
  return feed;
}

function showTopicsNote(given, chosen) {
  const note = $('topics-note');
  if (given.length <= MAX_TOPICS) {
    note.hidden = true;
    note.textContent = '';
    return;
  }
  const left = given.slice(MAX_TOPICS);
  note.textContent = `Subscribed to the first ${MAX_TOPICS} of ${given.length} topics, not to `
    + `${quoted(left)}: each topic takes a connection of its own, and a browser opens at most 6 `
    + 'to one server.';
  note.hidden = false;
}

function subscribe() {
  const given = splitList($('topics').value);
  if (!given.length) given.push('default');
  $('topics').value = given.join(', ');
  const chosen = given.slice(0, MAX_TOPICS);
  showTopicsNote(given, chosen);
  splitList($('types').value).forEach(listenFor);
  listenFor('message');

  // Close what is no longer wanted first, so the browser's connections are free for the rest.
  for (const [topic, feed] of feeds) {
    if (chosen.includes(topic)) continue;
    closeFeed(feed);
    feed.panel.remove();
    feeds.delete(topic);
  }
  const log = $('log');
  for (const topic of chosen) {
    let feed = feeds.get(topic);
    if (!feed) {
      feed = newFeed(topic);
      feeds.set(topic, feed);
      openFeed(feed);
    } else if (!feed.source || feed.source.readyState === EventSource.CLOSED) {
      // Refused before: try again, resuming after the last event this panel showed.
      closeFeed(feed);
      openFeed(feed, feed.lastId);
    } // else: still open or reconnecting by itself; keep it.
    log.append(feed.panel); // in the order given
  }
  log.dataset.count = String(chosen.length);
  $('log-empty').hidden = [...feeds.values()].some((f) => f.list.children.length);
  updateState();
  updateBanner();

  const url = new URLSearchParams(chosen.map((t) => ['topic', t]));
  splitList($('types').value).forEach((t) => url.append('type', t));
  history.replaceState(null, '', '?' + url); // shareable link to this view
}

// ---- publish ------------------------------------------------------------------

async function publish() {
  const out = $('pub-result');
  const topics = splitList($('pub-topic').value);
  const event = $('pub-event').value.trim();
  if (!topics.length) {
    out.className = 'err';
    out.textContent = 'Enter at least one topic.';
    return;
  }
  const body = { topic: topics.length === 1 ? topics[0] : topics, data: $('pub-data').value };
  if (event) {
    body.event = event;
    listenFor(event); // so this page shows the event when it comes back
  }
  $('publish').disabled = true;
  try {
    const res = await fetch('publish', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    let json = null;
    try { json = await res.json(); } catch (_) { /* not JSON */ }
    if (res.ok && json) {
      out.className = 'ok';
      out.textContent = `Published id ${json.id} to ${json.subscribers} subscriber${json.subscribers === 1 ? '' : 's'}.`;
    } else {
      out.className = 'err';
      out.textContent = `Error ${res.status}: ${(json && json.error) || res.statusText || 'unexpected answer'}`;
    }
  } catch (err) {
    out.className = 'err';
    out.textContent = `Could not reach the server: ${err.message}`;
  } finally {
    $('publish').disabled = false;
  }
}

// ---- stats --------------------------------------------------------------------

function fmt(key, v) {
  if (typeof v !== 'number') return typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/bytes/.test(key)) return v >= 1048576 ? `${(v / 1048576).toFixed(1)} MiB` : `${(v / 1024).toFixed(1)} KiB`;
  if (key === 'pid') return String(v);
  return v.toLocaleString('en-US');
}

async function pollStats() {
  try {
    const res = await fetch('stats', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const s = await res.json();
    $('subscribers').textContent = fmt('subscribers', s.subscribers);
    const dl = $('stats');
    dl.replaceChildren();
    for (const [k, v] of Object.entries(s)) {
      if (k === 'subscribers') continue;
      const dt = document.createElement('dt');
      dt.textContent = k.replace(/_bytes$/, '').replace(/_/g, ' ');
      const dd = document.createElement('dd');
      dd.textContent = fmt(k, v);
      const row = document.createElement('div'); // <div> groups a dt/dd pair in a <dl>
      row.append(dt, dd);
      dl.append(row);
    }
    statsDown = false;
  } catch (_) {
    statsDown = true;
    $('subscribers').textContent = '–';
  }
  updateBanner();
}

// ---- wiring -------------------------------------------------------------------

$('sub-form').addEventListener('submit', (e) => { e.preventDefault(); subscribe(); });
$('pub-form').addEventListener('submit', (e) => { e.preventDefault(); publish(); });
$('pub-data').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); publish(); }
});
$('filter').addEventListener('input', () => {
  const q = filterQuery();
  for (const feed of feeds.values()) {
    for (const li of feed.list.children) li.hidden = !matches(li, q);
    updateCount(feed);
  }
});
$('clear').addEventListener('click', () => {
  for (const feed of feeds.values()) {
    feed.list.replaceChildren();
    updateCount(feed);
  }
  $('log-empty').hidden = false;
});

const params = new URLSearchParams(location.search);
const initial = params.getAll('topic').flatMap(splitList);
if (initial.length) $('topics').value = initial.join(', ');
if (params.getAll('type').length) $('types').value = params.getAll('type').join(', ');
$('pub-topic').value = splitList($('topics').value)[0] || 'default';
subscribe();
pollStats();
setInterval(pollStats, 2000);
