// ssecast demo page: subscribe, log events, publish, poll stats. No build step.
'use strict';

const $ = (id) => document.getElementById(id);
const MAX_ENTRIES = 500;
const types = new Set(['message']); // event types we listen for ('gap' is handled separately)
let es = null;
let sseDown = false;   // the EventSource lost its connection
let statsDown = false; // the last stats poll failed
let wasDown = false;   // we showed the "server gone" banner, so say when it is back
let bannerTimer = 0;

const splitList = (s) => [...new Set(s.split(',').map((t) => t.trim()).filter(Boolean))];

function clock(d = new Date()) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// ---- connection state and banner -------------------------------------------

function setState(s) {
  $('state').textContent = s;
  $('state').dataset.state = s;
}

function updateBanner() {
  const b = $('banner');
  clearTimeout(bannerTimer);
  if (sseDown || statsDown) {
    wasDown = true;
    b.className = 'down';
    b.textContent = (es && es.readyState === EventSource.CLOSED)
      ? 'The server refused the event stream (error response). Check the topics and press Subscribe to try again.'
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

// ---- event log ----------------------------------------------------------------

function matches(li, q) {
  return !q || li.textContent.toLowerCase().includes(q);
}

function addEntry({ id, type, data, note }) {
  const li = document.createElement('li');
  li.className = 'entry' + (type === 'gap' ? ' gap' : '');
  li.dataset.id = id;
  li.dataset.type = type;
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

  const log = $('log');
  li.hidden = !matches(li, $('filter').value.trim().toLowerCase());
  log.prepend(li);
  while (log.children.length > MAX_ENTRIES) log.lastElementChild.remove();
  $('log-empty').hidden = true;
}

function onEvent(e) {
  addEntry({ id: e.lastEventId, type: e.type, data: e.data });
}

function onGap(e) {
  let asked = '?', oldest = null;
  try {
    const g = JSON.parse(e.data);
    asked = g.lastEventId;
    oldest = g.oldestId;
  } catch (_) { /* show the raw data anyway */ }
  const note = oldest == null
    ? `Gap: history could not fill in. Asked to resume after ${asked}, but the server holds no history (it may have restarted). Some events were missed.`
    : `Gap: history could not fill in. Asked to resume after ${asked}, oldest event still held is ${oldest}. Events in between were missed.`;
  addEntry({ id: e.lastEventId, type: 'gap', data: e.data, note });
}

function listenFor(type) {
  if (type === 'gap') return; // onGap already shows these
  types.add(type);
  if (es) es.addEventListener(type, onEvent); // same function twice is a no-op
  $('listening').textContent = [...types, 'gap'].join(', ');
}

// ---- subscribe ----------------------------------------------------------------

function subscribe() {
  const topics = splitList($('topics').value);
  if (!topics.length) topics.push('default');
  $('topics').value = topics.join(', ');
  splitList($('types').value).forEach(listenFor);

  if (es) es.close();
  const qs = new URLSearchParams(topics.map((t) => ['topic', t]));
  const source = new EventSource('events?' + qs);
  es = source;
  setState('connecting');
  source.onopen = () => {
    if (es !== source) return;
    setState('open');
    sseDown = false;
    updateBanner();
  };
  source.onerror = () => {
    if (es !== source) return;
    setState(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
    sseDown = true;
    updateBanner();
  };
  source.addEventListener('gap', onGap);
  types.forEach((t) => source.addEventListener(t, onEvent));
  listenFor('message');
  const url = new URLSearchParams(qs);
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
  const q = $('filter').value.trim().toLowerCase();
  for (const li of $('log').children) li.hidden = !matches(li, q);
});
$('clear').addEventListener('click', () => {
  $('log').replaceChildren();
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
