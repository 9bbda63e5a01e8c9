// ssecast demo page: subscribe, log events, publish, poll stats; in ssecast's own API or in
// Mercure's (/.well-known/mercure). No build step.
//
// An SSE event does not say which topic it came from, so the page opens one stream per topic (or
// Mercure selector) and shows each stream's events in a panel of its own. A browser's EventSource
// delivers only the event types it was told to listen for, so the page reads each stream with
// fetch() and parses it itself (sseParser, after the HTML standard): every event shows, whatever
// its type. The page therefore also does EventSource's reconnecting itself: it resends the last id
// as Last-Event-ID, waits what `retry:` says, and backs off after error answers. A new panel asks
// for everything history holds (Last-Event-ID: earliest), and each panel shows its own `gap` when
// history cannot fill in.
'use strict';

const $ = (id) => document.getElementById(id);
const MAX_ENTRIES = 500; // per panel
// A browser opens at most 6 HTTP/1.1 connections per host: one stream per topic, and the stats
// polls and publishes need one or two more.
const MAX_TOPICS = 4;
// A stream refused with an error answer (a proxy's 502 while a node restarts, say) is opened
// again after this long, doubling up to the most, resuming after the last event it showed.
const REOPEN_FIRST_MS = 1000;
const REOPEN_MOST_MS = 30000;
// The wait before reconnecting a stream that ended or broke, until the server says `retry:`
// (Chromium's EventSource waits as long).
const RETRY_DEFAULT_MS = 3000;
// The resume point that asks for everything history holds.
const EARLIEST = 'earliest';

/** 'ssecast' (GET /events, POST /publish) or 'mercure' (/.well-known/mercure). */
let mode = 'ssecast';
/** topic or selector -> { topic, mode, kind, token, controller, state, lastId, retryMs,
 *  reopenMs, reopenTimer, error, panel, list, count, badge, perror } */
const feeds = new Map();
let statsDown = false; // the last stats poll failed
let wasDown = false;   // we showed the "server gone" banner, so say when it is back
let bannerTimer = 0;

const splitList = (s) => [...new Set(s.split(',').map((t) => t.trim()).filter(Boolean))];
const splitLines = (s) => [...new Set(s.split(/\r\n|\r|\n/).map((t) => t.trim()).filter(Boolean))];
const quoted = (list) => list.map((t) => `“${t}”`).join(', ');
// A header value is a byte string: UTF-8 bytes, one character each, as EventSource sends them.
const headerValue = (s) => String.fromCharCode(...new TextEncoder().encode(s));

function clock(d = new Date()) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** What an error answer says: its JSON `error`, or the start of its text. */
async function answerText(res) {
  let text = '';
  try { text = await res.text(); } catch (_) { /* the body broke: say what we have */ }
  try {
    const json = JSON.parse(text);
    if (json && typeof json.error === 'string') return json.error;
  } catch (_) { /* not JSON */ }
  return text.trim().slice(0, 300) || res.statusText || 'unexpected answer';
}

// ---- the event stream format ---------------------------------------------------

/**
 * An event stream parser, as the HTML standard interprets one ("Event stream interpretation"):
 * returns a function to feed it text as it arrives, in pieces of any size. Lines end at CRLF,
 * LF or CR; an empty line dispatches the event; `data` lines join with LF; an `id` with NUL is
 * ignored; a `retry` of digits only is a reconnection time; a line starting with `:` is a comment.
 * `lastId` is where the stream resumes from (null: nowhere yet); at each dispatch `onId` hears
 * it if an `id` line changed it, even when the event itself has no data and is not dispatched.
 */
function sseParser(lastId, { onEvent, onId, onRetry }) {
  let partial = '';   // a line whose end has not arrived yet
  let skipLF = false; // the last piece ended in CR: an LF starting the next one is its pair
  let data = '';
  let type = '';
  let id = lastId;

  function dispatch() {
    if (id !== lastId) {
      lastId = id;
      onId(id);
    }
    if (data === '') {
      type = '';
      return;
    }
    onEvent({ type: type || 'message', data: data.slice(0, -1), lastEventId: id ?? '' });
    data = '';
    type = '';
  }

  function line(text) {
    if (text === '') return dispatch();
    if (text[0] === ':') return; // a comment, such as ssecast's keep-alive
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data += value + '\n';
    else if (field === 'id') { if (!value.includes('\0')) id = value; }
    else if (field === 'retry') { if (/^[0-9]+$/.test(value)) onRetry(parseInt(value, 10)); }
    // Any other field is ignored.
  }

  return (text) => {
    if (!text) return;
    if (skipLF && text[0] === '\n') text = text.slice(1);
    skipLF = false;
    const buffer = partial + text;
    const ends = /\r\n|\r|\n/g;
    let start = 0;
    for (let m = ends.exec(buffer); m; m = ends.exec(buffer)) {
      line(buffer.slice(start, m.index));
      start = ends.lastIndex;
      // A CR last in the piece ends its line now; the LF that may follow comes in the next.
      if (m[0] === '\r' && start === buffer.length) skipLF = true;
    }
    partial = buffer.slice(start);
  };
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
  feed.perror.hidden = s !== 'closed' || !feed.error;
  feed.perror.textContent = feed.error;
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
  name.title = `${feed.kind}=${feed.topic}`;
  const badge = document.createElement('span');
  badge.className = 'pstate';
  const count = document.createElement('span');
  count.className = 'count';
  head.append(name, badge, count);
  const perror = document.createElement('p');
  perror.className = 'perror';
  perror.hidden = true;
  const list = document.createElement('ol');
  list.className = 'entries';
  list.setAttribute('aria-label', `Events on ${feed.topic}`);
  panel.append(head, perror, list);
  Object.assign(feed, { panel, list, count, badge, perror });
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

function showEvent(feed, e) {
  const entry = { id: e.lastEventId, type: e.type, data: e.data };
  if (e.type !== 'gap') {
    addEntry(feed, entry);
    return;
  }
  let asked = '?', oldest = null;
  try {
    const g = JSON.parse(e.data);
    asked = g.lastEventId;
    oldest = g.oldestId;
  } catch (_) { /* show the raw data anyway */ }
  // A server that does not know `earliest` takes it for an id it has never seen: it says gap,
  // then sends all it holds, which is what the page asked for. Nothing is missing.
  if (asked === EARLIEST) return;
  const note = oldest == null
    ? `Gap: history could not fill in. Asked to resume after ${asked}, but the server holds no history (it may have restarted). Some events were missed.`
    : `Gap: history could not fill in. Asked to resume after ${asked}, oldest event still held is ${oldest}. Events in between were missed.`;
  addEntry(feed, { ...entry, note });
}

// ---- reading a stream -------------------------------------------------------------

function streamUrl(feed) {
  const qs = new URLSearchParams([[feed.kind, feed.topic]]);
  return (feed.mode === 'mercure' ? '.well-known/mercure?' : 'events?') + qs;
}

function streamHeaders(feed) {
  const headers = { Accept: 'text/event-stream' };
  // null: no event seen yet, so ask for all of history; '' (an empty `id:`): no resume point.
  const resume = feed.lastId ?? EARLIEST;
  if (resume) headers['Last-Event-ID'] = headerValue(resume);
  // Without one, the browser sends the mercureAuthorization cookie, if the page has one.
  if (feed.token) headers.Authorization = headerValue(`Bearer ${feed.token}`);
  return headers;
}

/** Reads one response of the feed's stream until it ends. Resolves with how: 'refused' (an
 *  error answer), 'dropped' (no answer, or the stream ended or broke) or 'aborted' (the page
 *  closed it). */
async function readStream(feed, signal) {
  let res;
  try {
    res = await fetch(streamUrl(feed), { headers: streamHeaders(feed), cache: 'no-store', signal });
  } catch (_) {
    return signal.aborted ? 'aborted' : 'dropped';
  }
  if (signal.aborted) return 'aborted';
  const mime = (res.headers.get('content-type') || '').split(';')[0].trim().toLowerCase();
  if (res.status !== 200 || mime !== 'text/event-stream') {
    // As EventSource does, any other answer fails the stream; unlike it, the page tries again.
    if (res.status === 200) {
      feed.error = `200 with Content-Type ${mime || '(none)'}, not text/event-stream`;
      res.body?.cancel().catch(() => {});
    } else {
      feed.error = `${res.status}: ${await answerText(res)}`;
    }
    return signal.aborted ? 'aborted' : 'refused';
  }
  feed.error = '';
  feed.reopenMs = REOPEN_FIRST_MS;
  setFeedState(feed, 'open');
  const parse = sseParser(feed.lastId, {
    onEvent: (e) => { if (!signal.aborted) showEvent(feed, e); },
    onId: (id) => { if (!signal.aborted) feed.lastId = id; },
    onRetry: (ms) => { if (!signal.aborted) feed.retryMs = ms; },
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder(); // UTF-8; drops a leading BOM, as the standard says
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parse(decoder.decode(value, { stream: true }));
    }
  } catch (_) { /* the connection broke, or the page aborted it */ }
  // An event not ended by an empty line when the stream stops is dropped, as the standard says.
  return signal.aborted ? 'aborted' : 'dropped';
}

/** Opens the feed's stream, and opens it again whenever it ends, until closeFeed. */
function openFeed(feed) {
  const controller = new AbortController();
  feed.controller = controller;
  if (feed.state !== 'reconnecting') setFeedState(feed, 'connecting');
  readStream(feed, controller.signal).then((end) => {
    if (end === 'aborted' || feed.controller !== controller) return;
    let wait;
    if (end === 'refused') {
      setFeedState(feed, 'closed');
      wait = feed.reopenMs;
      feed.reopenMs = Math.min(feed.reopenMs * 2, REOPEN_MOST_MS);
    } else {
      setFeedState(feed, 'reconnecting');
      wait = feed.retryMs;
    }
    feed.reopenTimer = setTimeout(() => {
      if (feed.controller === controller) openFeed(feed);
    }, wait);
  });
}

function closeFeed(feed) {
  clearTimeout(feed.reopenTimer);
  if (feed.controller) feed.controller.abort();
  feed.controller = null;
}

function newFeed(topic, kind, token) {
  const feed = {
    topic, mode, kind, token, controller: null, state: 'connecting', lastId: null,
    retryMs: RETRY_DEFAULT_MS, reopenMs: REOPEN_FIRST_MS, reopenTimer: 0, error: '',
  };
  makePanel(feed);
  return feed;
}

// ---- subscribe ----------------------------------------------------------------

/** The topics (or selectors) the form asks for, and the query parameter they go in. */
function wanted() {
  if (mode === 'mercure') {
    return { kind: $('m-syntax').value, given: splitLines($('m-selectors').value), noun: 'selectors' };
  }
  const given = splitList($('topics').value);
  if (!given.length) given.push('default');
  $('topics').value = given.join(', ');
  return { kind: 'topic', given, noun: 'topics' };
}

function showTopicsNote(given, noun) {
  const note = $('topics-note');
  if (given.length && given.length <= MAX_TOPICS) {
    note.hidden = true;
    note.textContent = '';
    return;
  }
  note.textContent = given.length
    ? `Subscribed to the first ${MAX_TOPICS} of ${given.length} ${noun}, not to `
      + `${quoted(given.slice(MAX_TOPICS))}: each takes a connection of its own, and a browser `
      + 'opens at most 6 to one server.'
    : `Enter at least one of the ${noun}.`;
  note.hidden = false;
}

function subscribe() {
  const { kind, given, noun } = wanted();
  const chosen = given.slice(0, MAX_TOPICS);
  showTopicsNote(given, noun);
  const token = $('sub-token').value.trim();

  // Close what is no longer wanted first, so the browser's connections are free for the rest.
  for (const [topic, feed] of feeds) {
    if (chosen.includes(topic) && feed.mode === mode && feed.kind === kind) continue;
    closeFeed(feed);
    feed.panel.remove();
    feeds.delete(topic);
  }
  const log = $('log');
  for (const topic of chosen) {
    let feed = feeds.get(topic);
    if (!feed) {
      feed = newFeed(topic, kind, token);
      feeds.set(topic, feed);
      openFeed(feed);
    } else if (feed.state === 'closed' || feed.token !== token) {
      // Refused before, or another token: open it now, resuming after the last event shown.
      closeFeed(feed);
      feed.token = token;
      openFeed(feed);
    } // else: open, or reconnecting by itself; keep it.
    log.append(feed.panel); // in the order given
  }
  log.dataset.count = String(chosen.length);
  $('log-empty').hidden = [...feeds.values()].some((f) => f.list.children.length);
  updateState();
  updateBanner();

  const url = new URLSearchParams(mode === 'mercure' ? [['mode', 'mercure']] : []);
  chosen.forEach((t) => url.append(kind, t));
  history.replaceState(null, '', '?' + url); // shareable link to this view
}

// ---- publish ------------------------------------------------------------------

/** The request for the publish form: JSON to /publish, or Mercure's form. */
function publishRequest(topics) {
  const type = $('pub-event').value.trim();
  const id = $('pub-id').value.trim();
  const retry = $('pub-retry').value.trim();
  const isPrivate = $('pub-private').checked;
  const token = $('pub-token').value.trim();
  const headers = token ? { Authorization: headerValue(`Bearer ${token}`) } : {};
  if (mode === 'mercure') {
    // Sent as application/x-www-form-urlencoded.
    const form = new URLSearchParams(topics.map((t) => ['topic', t]));
    form.set('data', $('pub-data').value);
    if (type) form.set('type', type);
    if (id) form.set('id', id);
    if (retry) form.set('retry', retry);
    if (isPrivate) form.set('private', 'on');
    return ['.well-known/mercure', { method: 'POST', headers, body: form }];
  }
  const body = { topic: topics.length === 1 ? topics[0] : topics, data: $('pub-data').value };
  if (type) body.event = type;
  if (id) body.id = id;
  // Not digits: sent as written, for the server to refuse with its reason.
  if (retry) body.retry = /^[0-9]+$/.test(retry) ? Number(retry) : retry;
  if (isPrivate) body.private = true;
  headers['Content-Type'] = 'application/json';
  return ['publish', { method: 'POST', headers, body: JSON.stringify(body) }];
}

async function publish() {
  const out = $('pub-result');
  const mercure = mode === 'mercure';
  const topics = mercure ? splitLines($('m-pub-topic').value) : splitList($('pub-topic').value);
  delete out.dataset.id;
  if (!topics.length) {
    out.className = 'err';
    out.textContent = 'Enter at least one topic.';
    return;
  }
  $('publish').disabled = true;
  try {
    const res = await fetch(...publishRequest(topics));
    if (!res.ok) {
      out.className = 'err';
      out.textContent = `Error ${res.status}: ${await answerText(res)}`;
    } else if (mercure) {
      // Mercure answers the event's id as text/plain.
      const id = await res.text();
      out.className = 'ok';
      out.dataset.id = id;
      out.textContent = `Published id ${id}.`;
    } else {
      const json = await res.json();
      out.className = 'ok';
      out.dataset.id = json.id;
      out.textContent = `Published id ${json.id} to ${json.subscribers} subscriber${json.subscribers === 1 ? '' : 's'}.`;
    }
  } catch (err) {
    out.className = 'err';
    out.textContent = `Could not reach the server: ${err.message}`;
  } finally {
    $('publish').disabled = false;
  }
}

// ---- mode ---------------------------------------------------------------------

function setMode(next) {
  mode = next;
  document.body.dataset.mode = next;
  for (const m of ['ssecast', 'mercure']) {
    $(`mode-${m}`).setAttribute('aria-selected', String(m === next));
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
for (const m of ['ssecast', 'mercure']) {
  $(`mode-${m}`).addEventListener('click', () => {
    if (mode === m) return;
    setMode(m);
    subscribe();
  });
}
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
if (params.get('mode') === 'mercure') {
  setMode('mercure');
  const patterns = params.getAll('match_urlpattern');
  const selectors = patterns.length ? patterns : params.getAll('topic');
  if (patterns.length) $('m-syntax').value = 'match_urlpattern';
  if (selectors.length) $('m-selectors').value = selectors.join('\n');
} else {
  const initial = params.getAll('topic').flatMap(splitList);
  if (initial.length) $('topics').value = initial.join(', ');
  $('pub-topic').value = splitList($('topics').value)[0] || 'default';
}
subscribe();
pollStats();
setInterval(pollStats, 2000);
