// omnichat agent panel: plain ES module, no build step. It signs in with a
// session cookie, reads the lists and conversations from the agent API, and
// keeps them current from the event stream (GET /api/v1/events), which it
// resumes after a drop with the last event ID it saw.

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  csrf: '',
  chats: new Map(), // chat ID -> chat as GET /api/v1/chats/{id} answers
  open: null, // the chat shown in the conversation pane
  messages: [],
  actions: [], // the open chat's actions (GET /api/v1/chats/{id}/actions)
  runs: [], // the open chat's action runs, oldest first
  lastId: '', // the last event ID seen, to resume from
  es: null,
  listsLoaded: false,
  touchedDuringLoad: null, // chat IDs refreshed while loadLists runs
  sound: null,
  queues: new Map(), // queue ID -> name, learnt from chats (and, for admins, the admin API)
};

// --- HTTP ------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body, headers = {}) {
  const opts = { method, credentials: 'same-origin', headers: { ...headers } };
  if (method !== 'GET') opts.headers['X-CSRF-Token'] = state.csrf;
  if (body instanceof FormData) {
    opts.body = body;
  } else if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401 && state.me && path !== '/api/v1/session') {
    signedOut();
  }
  if (!r.ok) throw new HttpError(r.status, data && data.detail);
  return data;
}

// newKey makes an Idempotency-Key. crypto.randomUUID exists only in secure
// contexts (HTTPS, localhost); the panel may also be used over plain HTTP.
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

function notice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { n.hidden = true; }, 6000);
}

// --- sign-in ---------------------------------------------------------------

function showSignIn() {
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-email').focus();
}

function signedOut() {
  state.me = null;
  if (state.es) state.es.close();
  state.es = null;
  showSignIn();
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('signin-error').textContent = '';
  try {
    const s = await api('POST', '/api/v1/session', { email: $('signin-email').value.trim(), password: $('signin-password').value });
    $('signin-password').value = '';
    begin(s);
  } catch (e) {
    $('signin-error').textContent = e.status === 401 ? 'Email or password is wrong.' : e.message;
  }
});

$('signout').addEventListener('click', async () => {
  try { await api('DELETE', '/api/v1/session'); } catch { /* signed out anyway */ }
  signedOut();
});

// --- start -----------------------------------------------------------------

function begin(session) {
  state.me = session.user;
  state.csrf = session.csrf_token || '';
  $('signin').hidden = true;
  $('app').hidden = false;
  $('me-name').textContent = state.me.name || state.me.email;
  renderStatus();
  state.sound = new Audio('/api/v1/notification-sound');
  // Queues to transfer to: the user's own, named once a chat of theirs is seen.
  for (const q of state.me.queue_ids || []) if (!state.queues.has(q)) state.queues.set(q, `Queue ${q.slice(0, 8)}`);
  if (state.me.can_manage_chats_effective) loadDirectory();
  connect();
}

async function boot() {
  try {
    begin(await api('GET', '/api/v1/session'));
  } catch {
    showSignIn();
  }
}

// --- the event stream --------------------------------------------------------

const EVENT_TYPES = ['chat.offered', 'chat.offer_withdrawn', 'chat.assigned', 'chat.unassigned', 'chat.waiting', 'chat.bot',
  'chat.closed', 'message.created', 'message.status', 'message.edited', 'message.updated', 'unread.changed', 'agent.status',
  'action_run.changed'];

function streamUp(up) {
  $('banner').hidden = up;
  document.body.dataset.stream = up ? 'open' : 'down';
}

function connect() {
  // EventSource resends the last ID itself when it reconnects; a new one is
  // told where to resume in the query.
  const url = '/api/v1/events' + (state.lastId ? `?last_event_id=${encodeURIComponent(state.lastId)}` : '');
  const es = new EventSource(url);
  state.es = es;
  const track = (e) => { if (e.lastEventId) state.lastId = e.lastEventId; };
  es.addEventListener('open', () => streamUp(true));
  es.addEventListener('error', () => {
    streamUp(false);
    if (es.readyState === EventSource.CLOSED) {
      // The server refused (signed out, restarting, too many tabs): try
      // again while the session holds; a 401 shows the sign-in page.
      setTimeout(() => {
        if (state.es !== es || !state.me) return;
        api('GET', '/api/v1/session').then(() => { if (state.es === es) connect(); }, (e) => {
          if (e.status !== 401 && state.es === es) setTimeout(() => { if (state.es === es) connect(); }, 3000);
        });
      }, 3000);
    }
  });
  es.addEventListener('ready', (e) => {
    track(e);
    streamUp(true);
    // The lists are read once, after the stream holds its place: every
    // later change arrives as an event, also across reconnects.
    if (!state.listsLoaded) loadLists();
  });
  es.addEventListener('resync', (e) => {
    track(e);
    loadLists();
    if (state.open) { loadMessages(state.open); loadActions(state.open); loadRuns(state.open); }
  });
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (e) => {
      track(e);
      let data = {};
      try { data = JSON.parse(e.data); } catch { /* keep {} */ }
      handle(type, data);
    });
  }
}

function handle(type, d) {
  document.body.dataset.lastEvent = type;
  if (type === 'agent.status') {
    state.me.status = d.status;
    renderStatus();
    if (d.reason === 'offer_expired') notice('An offer expired before you accepted it: you are now Inactive.');
    return;
  }
  if (type === 'unread.changed') {
    const c = state.chats.get(d.chat_id);
    if (c) { c.unread_messages = d.unread_messages; renderLists(); }
    return;
  }
  if (!d.chat_id) return;
  if (type === 'action_run.changed') {
    if (state.open === d.chat_id) loadRuns(d.chat_id);
    return;
  }
  refreshChat(d.chat_id, type);
  if (type.startsWith('message.') && state.open === d.chat_id) loadMessages(d.chat_id);
}

// --- chats -------------------------------------------------------------------

// A list load takes several reads; a chat the stream changed meanwhile keeps
// what its own read (refreshChat) found, which is newer than a page read
// before the change. Only the newest of overlapping loads is applied.
let listLoads = 0;
async function loadLists() {
  const load = ++listLoads;
  const touched = new Set();
  state.touchedDuringLoad = touched;
  const fresh = new Map();
  for (const [status, limit] of [['offered', 100], ['waiting', 100], ['in_progress', 100], ['closed', 15]]) {
    try {
      const page = await api('GET', `/api/v1/chats?status=${status}&limit=${limit}`);
      for (const c of page.items) fresh.set(c.id, c);
    } catch (e) {
      notice(`Could not load chats: ${e.message}`);
      return;
    }
  }
  if (load !== listLoads) return;
  state.touchedDuringLoad = null;
  for (const id of touched) {
    if (state.chats.has(id)) fresh.set(id, state.chats.get(id));
    else fresh.delete(id);
  }
  state.chats = fresh;
  state.listsLoaded = true;
  for (const c of fresh.values()) state.queues.set(c.queue_id, c.queue_name);
  renderLists();
  if (state.open) renderConversationHead();
}

// refreshChat reads one chat again; refreshes asked for while one runs are
// folded into one more read, so the last answer is always the newest.
const refreshing = new Map();
function refreshChat(id, cause) {
  if (refreshing.has(id)) { refreshing.set(id, true); return; }
  refreshing.set(id, false);
  (async () => {
    let offeredBefore = bucket(state.chats.get(id)) === 'offered';
    do {
      refreshing.set(id, false);
      try {
        const c = await api('GET', `/api/v1/chats/${id}`);
        state.chats.set(id, c);
        state.touchedDuringLoad?.add(id);
        state.queues.set(c.queue_id, c.queue_name);
      } catch (e) {
        if (e.status === 404) {
          state.chats.delete(id);
          state.touchedDuringLoad?.add(id);
        }
      }
    } while (refreshing.get(id));
    refreshing.delete(id);
    const c = state.chats.get(id);
    if (cause === 'chat.offered' && !offeredBefore && bucket(c) === 'offered') alertOffer(c);
    offeredBefore = false;
    renderLists();
    if (state.open === id) {
      renderConversationHead();
      if (c && c.unread_messages > 0) markRead(c);
    }
  })();
}

function bucket(c) {
  if (!c || !state.me) return null;
  const mine = c.agent_id === state.me.id;
  if (c.status === 'offered' && mine) return 'offered';
  if (c.status === 'waiting' && c.routing_rule === 'all_agents' && (state.me.queue_ids || []).includes(c.queue_id)) return 'offered';
  if (c.status === 'in_progress' && mine) return 'inprogress';
  if (c.status === 'closed' && mine) return 'closed';
  return null;
}

function alertOffer(c) {
  if (state.sound) {
    state.sound.currentTime = 0;
    state.sound.play().catch(() => { /* muted until the user interacts */ });
  }
  if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
    const n = new Notification('New chat offered', { body: `${c.contact_name}: ${c.last_message_text || ''}`, tag: c.id });
    n.onclick = () => { window.focus(); openChat(c.id); };
  }
}

const ago = (t) => {
  const s = Math.max(0, Math.round((Date.now() - new Date(t).getTime()) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
};
const left = (t) => {
  const s = Math.max(0, Math.round((new Date(t).getTime() - Date.now()) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k);
  return e;
}

function chatItem(c, which) {
  const initials = (c.contact_name || '?').split(/\s+/).map((w) => w[0]).join('').slice(0, 2).toUpperCase();
  const avatar = el('span', { class: 'avatar', 'aria-hidden': 'true' },
    c.contact_photo_url ? el('img', { src: c.contact_photo_url, alt: '' }) : initials,
    el('span', { class: `chan chan-${c.provider}`, title: c.channel_name }, (c.provider || '?')[0].toUpperCase()));
  const side = el('span', { class: 'side' });
  if (c.unread_messages > 0) side.append(el('span', { class: 'badge', title: 'unread messages' }, String(c.unread_messages)));
  if (which === 'offered') {
    side.append(el('span', { class: 'wait', dataset: { since: c.waiting_since }, title: 'waiting' }, ago(c.waiting_since)));
    if (c.offer_expires_at) side.append(el('span', { class: 'countdown', dataset: { until: c.offer_expires_at }, title: 'time left to accept' }, left(c.offer_expires_at)));
    side.append(el('button', { type: 'button', class: 'accept', dataset: { accept: c.id }, onclick: (e) => { e.stopPropagation(); accept(c.id); } }, 'Accept'));
  } else if (which === 'inprogress' && c.last_message_at) {
    side.append(el('span', { class: 'wait', dataset: { since: c.last_message_at } }, ago(c.last_message_at)));
  } else if (which === 'closed' && c.closed_at) {
    side.append(el('span', {}, new Date(c.closed_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
  }
  const li = el('li', {
    class: 'chat', tabindex: '0', role: 'button', dataset: { chatId: c.id },
    'aria-current': state.open === c.id ? 'true' : 'false',
    'aria-label': `${c.contact_name} on ${c.channel_name}${c.unread_messages ? `, ${c.unread_messages} unread` : ''}`,
    onclick: () => openChat(c.id),
    onkeydown: (e) => { if (e.target === li && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); openChat(c.id); } },
  }, avatar, el('span', { class: 'name' }, c.contact_name), side, el('span', { class: 'last' }, c.last_message_text || ''));
  return li;
}

function renderLists() {
  const groups = { offered: [], inprogress: [], closed: [] };
  for (const c of state.chats.values()) {
    const b = bucket(c);
    if (b) groups[b].push(c);
  }
  const t = (v) => (v ? new Date(v).getTime() : 0);
  groups.offered.sort((a, b) => t(a.waiting_since) - t(b.waiting_since));
  groups.inprogress.sort((a, b) => t(b.last_message_at) - t(a.last_message_at));
  groups.closed.sort((a, b) => t(b.closed_at) - t(a.closed_at));
  groups.closed = groups.closed.slice(0, 15);
  for (const [name, list] of Object.entries(groups)) {
    $(`list-${name}`).replaceChildren(...list.map((c) => chatItem(c, name)));
    const n = $(`n-${name}`);
    if (n) n.textContent = list.length ? String(list.length) : '';
  }
  document.title = groups.offered.length ? `(${groups.offered.length}) omnichat` : 'omnichat';
}

setInterval(() => {
  for (const e of document.querySelectorAll('[data-since]')) e.textContent = ago(e.dataset.since);
  for (const e of document.querySelectorAll('[data-until]')) e.textContent = left(e.dataset.until);
}, 1000);

// --- commands ----------------------------------------------------------------

async function accept(id) {
  try {
    const c = await api('POST', `/api/v1/chats/${id}/accept`);
    state.chats.set(c.id, c);
    renderLists();
    openChat(id);
  } catch (e) {
    notice(e.status === 409 ? 'Somebody else took this chat, or it is no longer offered to you.' : `Accept failed: ${e.message}`);
    refreshChat(id);
  }
}

function renderStatus() {
  const active = state.me.status === 'active';
  const b = $('status-toggle');
  b.setAttribute('aria-pressed', String(active));
  b.textContent = active ? 'Active' : 'Inactive';
  b.title = active ? 'You receive chats. Click to stop.' : 'You receive no chats. Click to become Active.';
}

$('status-toggle').addEventListener('click', async () => {
  const next = state.me.status === 'active' ? 'inactive' : 'active';
  if (next === 'active' && 'Notification' in window && Notification.permission === 'default') {
    Notification.requestPermission().catch(() => {});
  }
  try {
    await api('PUT', '/api/v1/agent/status', { status: next });
    state.me.status = next;
    renderStatus();
    loadLists(); // an Active agent sees the waiting chats of all_agents queues
  } catch (e) {
    notice(`Could not change status: ${e.message}`);
  }
});

// --- the conversation ----------------------------------------------------------

function openChat(id) {
  state.open = id;
  state.messages = [];
  state.actions = [];
  state.runs = [];
  $('messages').replaceChildren();
  $('action-runs').replaceChildren();
  $('app').classList.add('reading');
  $('conv-empty').hidden = true;
  $('conv-main').hidden = false;
  renderConversationHead();
  renderLists();
  loadMessages(id);
  loadActions(id);
  loadRuns(id);
  const c = state.chats.get(id);
  if (c && c.unread_messages > 0) markRead(c);
}

async function markRead(c) {
  if (c.agent_id !== state.me.id || c.status !== 'in_progress' || document.hidden) return;
  try { await api('POST', `/api/v1/chats/${c.id}/read`); } catch { /* the badge stays */ }
}

document.addEventListener('visibilitychange', () => {
  const c = state.open && state.chats.get(state.open);
  if (!document.hidden && c && c.unread_messages > 0) markRead(c);
});

$('back').addEventListener('click', () => { $('app').classList.remove('reading'); });

function renderConversationHead() {
  const c = state.chats.get(state.open);
  if (!c) {
    $('conv-title').textContent = 'Chat';
    $('conv-meta').textContent = 'no longer yours';
    for (const b of ['conv-accept', 'conv-transfer', 'conv-close']) $(b).hidden = true;
    $('reply').hidden = true;
    renderActionButtons();
    return;
  }
  const mine = c.agent_id === state.me.id;
  $('conv-title').textContent = c.contact_name;
  const statusText = { offered: 'offered', waiting: 'waiting', in_progress: mine ? 'in progress' : 'with another agent', closed: `closed${c.close_reason ? ` (${c.close_reason})` : ''}`, bot: 'with a bot' }[c.status] || c.status;
  $('conv-meta').textContent = `${c.channel_name} · ${c.queue_name} · ${statusText}${c.contact_blocked_at ? ' · the customer blocked the bot' : ''}`;
  $('conv-accept').hidden = bucket(c) !== 'offered';
  const working = mine && c.status === 'in_progress';
  $('conv-transfer').hidden = !working;
  $('conv-close').hidden = !working;
  $('reply').hidden = !working;
  renderActionButtons();
}

const loadingMessages = new Map();
function loadMessages(id) {
  if (loadingMessages.has(id)) { loadingMessages.set(id, true); return; }
  loadingMessages.set(id, false);
  (async () => {
    do {
      loadingMessages.set(id, false);
      const all = [];
      let cursor = '';
      try {
        for (;;) {
          const page = await api('GET', `/api/v1/chats/${id}/messages?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
          all.push(...page.items);
          if (!page.next_cursor) break;
          cursor = page.next_cursor;
        }
      } catch (e) {
        if (state.open === id) notice(`Could not load the conversation: ${e.message}`);
        break;
      }
      if (state.open === id) { state.messages = all; renderMessages(); }
    } while (loadingMessages.get(id));
    loadingMessages.delete(id);
  })();
}

function attachmentView(a) {
  if (a.status === 'pending') return el('span', { class: 'mmeta' }, `${a.name || a.kind}: arriving…`);
  if (a.status === 'failed') return el('span', { class: 'mmeta st-failed' }, `${a.name || a.kind}: could not be fetched${a.fail_reason ? ` (${a.fail_reason})` : ''}`);
  if ((a.media_type || '').startsWith('image/')) {
    return el('a', { href: a.url, target: '_blank', rel: 'noopener' }, el('img', { src: a.url, alt: a.name || 'image', loading: 'lazy' }));
  }
  const kb = a.size ? ` (${Math.max(1, Math.round(a.size / 1024))} KB)` : '';
  return el('a', { href: a.url, download: a.name || 'file' }, `📎 ${a.name || a.kind}${kb}`);
}

function renderMessages() {
  const list = $('messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...state.messages.map((m) => {
    const meta = [new Date(m.created_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })];
    if (m.edited_at) meta.push('edited');
    const status = m.direction === 'outbound'
      ? el('span', { class: `st-${m.status}`, dataset: { status: m.status } }, ` · ${m.status}${m.status === 'failed' && m.fail_reason ? `: ${m.fail_reason}` : ''}`)
      : null;
    return el('li', { class: `msg ${m.direction}`, dataset: { messageId: m.id } },
      m.text ? el('span', { class: 'text' }, m.text) : null,
      ...(m.attachments || []).map(attachmentView),
      el('span', { class: 'mmeta' }, (m.direction === 'outbound' && m.sender_name ? `${m.sender_name} · ` : '') + meta.join(' · '), status));
  }));
  if (atBottom || list.dataset.chat !== state.open) list.scrollTop = list.scrollHeight;
  list.dataset.chat = state.open;
}

$('conv-accept').addEventListener('click', () => accept(state.open));

$('conv-close').addEventListener('click', async () => {
  const id = state.open;
  try {
    const c = await api('POST', `/api/v1/chats/${id}/close`);
    state.chats.set(c.id, c);
    renderLists();
    renderConversationHead();
  } catch (e) {
    notice(`Close failed: ${e.message}`);
  }
});

$('reply').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const id = state.open;
  const text = $('reply-text').value;
  const file = $('reply-file').files[0];
  if (!text.trim() && !file) return;
  let body = { text };
  if (file) {
    body = new FormData();
    if (text.trim()) body.append('text', text);
    body.append('file', file);
  }
  $('reply-send').disabled = true;
  try {
    await api('POST', `/api/v1/chats/${id}/messages`, body, { 'Idempotency-Key': newKey() });
    $('reply-text').value = '';
    $('reply-file').value = '';
    loadMessages(id);
  } catch (e) {
    notice(`Not sent: ${e.message}`);
  } finally {
    $('reply-send').disabled = false;
    $('reply-text').focus();
  }
});

$('reply-text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('reply').requestSubmit();
});

// --- chat actions ------------------------------------------------------------------

async function loadActions(id) {
  try {
    const page = await api('GET', `/api/v1/chats/${id}/actions`);
    if (state.open !== id) return;
    state.actions = page.items;
  } catch (e) {
    if (state.open !== id) return;
    state.actions = [];
    if (e.status !== 404) notice(`Could not load the chat's actions: ${e.message}`);
  }
  actionButtonsKey = '';
  renderActionButtons();
}

// loadRuns reads the open chat's runs again; asked for while a read runs, it
// reads once more after it, so the last answer is never older than the last event.
const loadingRuns = new Map();
function loadRuns(id) {
  if (loadingRuns.has(id)) { loadingRuns.set(id, true); return; }
  loadingRuns.set(id, false);
  (async () => {
    do {
      loadingRuns.set(id, false);
      try {
        const page = await api('GET', `/api/v1/chats/${id}/action-runs`);
        if (state.open === id) { state.runs = page.items; renderRuns(); }
      } catch (e) {
        if (state.open === id && e.status !== 404) notice(`Could not load the action runs: ${e.message}`);
        break;
      }
    } while (loadingRuns.get(id));
    loadingRuns.delete(id);
  })();
}

// The buttons are rebuilt only when what they offer changes, so keyboard
// focus stays on a button while the chat around it updates.
let actionButtonsKey = '';
const runningActions = new Set(); // action IDs whose run request is on its way

function renderActionButtons() {
  const c = state.open && state.chats.get(state.open);
  const working = !!c && c.agent_id === state.me.id && c.status === 'in_progress';
  const shown = working ? state.actions : [];
  const key = `${state.open}|${shown.map((a) => a.id).join(',')}`;
  if (key !== actionButtonsKey) {
    actionButtonsKey = key;
    $('action-buttons').replaceChildren(...shown.map((a) => el('button', {
      type: 'button', class: 'action', dataset: { actionId: a.id }, title: `Run "${a.caption}" on this chat`,
      onclick: () => runAction(state.open, a),
    }, a.caption)));
  }
  for (const b of $('action-buttons').children) {
    const busy = runningActions.has(b.dataset.actionId);
    b.setAttribute('aria-busy', String(busy));
    b.setAttribute('aria-disabled', String(busy));
  }
  $('chat-actions').hidden = shown.length === 0 && state.runs.length === 0;
}

const RUN_STATUS = { started: 'running…', completed: 'completed', failed: 'failed', timed_out: 'timed out' };

function renderRuns() {
  const runs = [...state.runs].reverse(); // newest first
  $('action-runs').replaceChildren(...runs.map((r) => {
    const outcome = r.status === 'completed' ? r.result : r.error;
    const when = new Date(r.created_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const label = `${r.caption} · ${RUN_STATUS[r.status] || r.status}${outcome ? `: ${outcome}` : ''} · ${when}`;
    return el('li', { class: `run run-${r.status}`, dataset: { runId: r.id, status: r.status }, title: label },
      el('span', { class: 'run-caption' }, r.caption),
      el('span', { class: 'run-status' }, ` · ${RUN_STATUS[r.status] || r.status}`),
      outcome ? el('span', { class: 'run-outcome' }, `: ${outcome}`) : null,
      el('span', { class: 'run-time' }, ` · ${when}`));
  }));
  renderActionButtons();
}

// runAction starts an action on the chat. One Idempotency-Key per click: a
// request retried after a network error or a 503 starts one run, not two.
async function runAction(chatId, a) {
  if (runningActions.has(a.id)) return;
  runningActions.add(a.id);
  renderActionButtons();
  const key = newKey();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const run = await api('POST', `/api/v1/chats/${chatId}/actions/${a.id}/run`, undefined, { 'Idempotency-Key': key });
        if (state.open === chatId && !state.runs.some((r) => r.id === run.id)) {
          state.runs.push(run);
          renderRuns();
        }
        break;
      } catch (e) {
        const transient = !(e instanceof HttpError) || e.status === 502 || e.status === 503 || e.status === 504;
        if (!transient || attempt >= 3) throw e;
        await new Promise((r) => { setTimeout(r, 1000 * attempt); });
      }
    }
  } catch (e) {
    notice(e.status === 409 ? `"${a.caption}" can not run: the chat is closed.` : `"${a.caption}" did not start: ${e.message}`);
  } finally {
    runningActions.delete(a.id);
    renderActionButtons();
  }
}

// --- transfer ------------------------------------------------------------------

async function loadDirectory() {
  try {
    for (const q of await api('GET', '/api/v1/admin/queues')) state.queues.set(q.id, q.name);
    state.agents = await api('GET', '/api/v1/admin/users');
  } catch { /* agents transfer by ID */ }
}

$('conv-transfer').addEventListener('click', () => {
  const qs = $('transfer-queue');
  qs.replaceChildren(el('option', { value: '' }, '—'), ...[...state.queues].map(([id, name]) => el('option', { value: id }, name || id)));
  const as = $('transfer-agent');
  as.replaceChildren(el('option', { value: '' }, '—'), ...(state.agents || []).filter((u) => u.id !== state.me.id).map((u) => el('option', { value: u.id }, u.name || u.email)));
  $('transfer-agent-id').value = '';
  $('transfer-error').textContent = '';
  $('transfer-dialog').showModal();
});

$('transfer-form').addEventListener('submit', async (ev) => {
  if (ev.submitter && ev.submitter.value !== 'go') return;
  ev.preventDefault();
  const queue = $('transfer-queue').value;
  const agent = $('transfer-agent').value || $('transfer-agent-id').value.trim();
  if (!!queue === !!agent) {
    $('transfer-error').textContent = 'Choose a queue or an agent (one of them).';
    return;
  }
  try {
    await api('POST', `/api/v1/chats/${state.open}/transfer`, queue ? { queue_id: queue } : { agent_id: agent });
    $('transfer-dialog').close();
    refreshChat(state.open);
  } catch (e) {
    $('transfer-error').textContent = e.message;
  }
});

boot();
