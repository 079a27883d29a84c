// The admin dashboard: signs in through the API, then reads health, analytics, security events and logs
// with the admin's token. Plain browser JavaScript, no build step; Chart.js comes from the server too
// (/admin/assets/chart.umd.min.js), never from a CDN. The token lives in memory only: a reload signs out.
'use strict';

const API = '/api/v2';
const REFRESH_MS = 10_000;
const state = { token: null, timer: null, charts: {} };

const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const response = await fetch(API + path, {
    ...options,
    headers: {
      ...(options.body ? { 'content-type': 'application/json' } : {}),
      ...(state.token ? { authorization: `Bearer ${state.token}` } : {}),
    },
  });
  const body = response.headers.get('content-type')?.includes('json')
    ? await response.json()
    : await response.text();
  if (response.status === 401 && state.token) signOut('Your session ended; sign in again.');
  if (!response.ok && response.status !== 503)
    throw Object.assign(new Error(body.message ?? response.statusText), { body });
  return body;
}

// ---- signing in and out ----

$('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  $('sign-in-error').textContent = '';
  try {
    const session = await api('/auth/login', {
      method: 'POST',
      body: JSON.stringify({ email: form.get('email'), password: form.get('password') }),
    });
    if (!session.user.roles.includes('admin')) {
      $('sign-in-error').textContent = 'This page is for administrators.';
      return;
    }
    state.token = session.access_token;
    $('who').textContent = session.user.name;
    $('sign-in').hidden = true;
    $('dashboard').hidden = false;
    $('sign-out').hidden = false;
    await refresh(true);
    state.timer = setInterval(() => void refresh(false), REFRESH_MS);
  } catch (error) {
    $('sign-in-error').textContent = error.message;
  }
});

$('sign-out').addEventListener('click', () => {
  void api('/auth/logout', { method: 'POST' }).catch(() => undefined);
  signOut('');
});

function signOut(message) {
  state.token = null;
  clearInterval(state.timer);
  $('dashboard').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('who').textContent = '';
  $('sign-in-error').textContent = message;
}

// ---- reading ----

const ago = (ms) => new Date(Date.now() - ms).toISOString();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function refresh(everything) {
  const reads = [
    api('/health').then(showHealth),
    api(`/admin/analytics/activity?bucket=minute&from=${ago(3 * HOUR)}`).then(showMessages),
    api(`/admin/analytics/connections?bucket=minute&from=${ago(3 * HOUR)}`).then(showConnections),
    api(`/admin/analytics/errors?bucket=hour&from=${ago(DAY)}`).then(showErrors),
    api('/admin/security/events?limit=10').then(showSecurityEvents),
  ];
  if (everything) {
    reads.push(api(`/admin/analytics/activity?bucket=day&from=${ago(14 * DAY)}`).then(showActiveUsers));
    reads.push(api('/admin/logs').then(showLogs));
  }
  const results = await Promise.allSettled(reads);
  for (const result of results) if (result.status === 'rejected') console.warn(result.reason);
  $('updated-at').textContent = new Date().toLocaleTimeString();
}

function showHealth(health) {
  const status = $('health-status');
  status.textContent = health.status;
  status.className = `value status-${health.status}`;
  const database = health.checks?.database;
  $('health-database').textContent = database ? `${database.status} · ${database.latency_ms ?? '–'} ms` : '–';
  $('health-connections').textContent = health.websocket?.connections ?? '–';
  $('health-users').textContent = health.websocket?.users ?? '–';
  $('health-throughput').textContent = health.throughput?.messages_per_min ?? '–';
  $('health-errors').textContent = health.errors?.rate_per_min ?? '–';
  $('health-rss').textContent = health.system ? `${Math.round(health.system.rss_bytes / 1048576)} MiB` : '–';
  $('health-loop').textContent = health.system ? `${health.system.event_loop_delay_p99_ms} ms` : '–';
}

const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const day = (iso) => new Date(iso).toLocaleDateString([], { month: 'short', day: 'numeric' });
const sum = (record) => Object.values(record ?? {}).reduce((total, n) => total + n, 0);

/**
 * The API returns only the buckets that have something in them; a chart wants every bucket of the range,
 * empty ones as zero, so a quiet hour shows as quiet rather than missing.
 */
function everyBucket(series, rangeMs, stepMs, values) {
  const byStart = new Map(series.map((bucket) => [Math.floor(Date.parse(bucket.start) / stepMs), bucket]));
  const last = Math.floor(Date.now() / stepMs);
  const starts = [];
  for (let slot = last - Math.round(rangeMs / stepMs) + 1; slot <= last; slot++) starts.push(slot);
  return {
    starts: starts.map((slot) => new Date(slot * stepMs).toISOString()),
    values: values.map((value) => starts.map((slot) => (byStart.has(slot) ? value(byStart.get(slot)) : 0))),
  };
}

const MINUTE = 60_000;

function showMessages(activity) {
  const { starts, values } = everyBucket(activity.series, 3 * HOUR, MINUTE, [
    (bucket) => sum(bucket.messages),
  ]);
  draw('chart-messages', 'line', starts.map(time), [{ label: 'messages', data: values[0] }]);
}

function showActiveUsers(activity) {
  const days = activity.active_users.daily.map((entry) => ({ ...entry, start: entry.day }));
  const { starts, values } = everyBucket(days, 14 * DAY, DAY, [
    (entry) => entry.users,
    (entry) => entry.senders,
  ]);
  draw('chart-active', 'bar', starts.map(day), [
    { label: 'active users', data: values[0] },
    { label: 'senders', data: values[1] },
  ]);
}

function showErrors(errors) {
  const { starts, values } = everyBucket(errors.series, DAY, HOUR, [(bucket) => bucket.count]);
  draw('chart-errors', 'bar', starts.map(time), [
    { label: 'errors', data: values[0], backgroundColor: '#c53030' },
  ]);
}

function showConnections(connections) {
  const { starts, values } = everyBucket(connections.series, 3 * HOUR, MINUTE, [
    (bucket) => bucket.peak,
    (bucket) => bucket.opened,
  ]);
  draw('chart-connections', 'line', starts.map(time), [
    { label: 'peak open', data: values[0] },
    { label: 'opened', data: values[1] },
  ]);
}

/** Draws a chart once, then updates its data in place (no flicker every 10 s). */
function draw(canvasId, type, labels, datasets) {
  const existing = state.charts[canvasId];
  if (existing) {
    existing.data.labels = labels;
    existing.data.datasets.forEach((dataset, i) => (dataset.data = datasets[i].data));
    existing.update('none');
    return;
  }
  state.charts[canvasId] = new Chart($(canvasId), {
    type,
    data: { labels, datasets },
    options: {
      animation: false,
      elements: { point: { radius: 0 } },
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { display: datasets.length > 1 } },
    },
  });
}

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text; // never innerHTML: principals and paths come from attackers
  if (className) td.className = className;
  row.append(td);
}

function showSecurityEvents(page) {
  const body = $('security-events');
  body.replaceChildren();
  if (page.events.length === 0) {
    const row = document.createElement('tr');
    cell(row, 'Nothing recorded.');
    body.append(row);
  }
  for (const event of page.events) {
    const row = document.createElement('tr');
    cell(row, new Date(event.at).toLocaleString());
    cell(row, event.action, `action-${event.action}`);
    cell(row, event.principal);
    cell(row, event.rules.map((rule) => rule.id).join(', '));
    cell(row, String(event.score));
    cell(
      row,
      event.path
        ? `${event.method} ${event.path}`
        : event.connection_id
          ? `socket frame ${event.frame ?? ''}`
          : '',
    );
    body.append(row);
  }
}

function showLogs(listing) {
  const list = $('log-files');
  list.replaceChildren();
  for (const file of listing.files) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = `${file.name} (${Math.ceil(file.size / 1024)} KiB)`;
    button.dataset.name = file.name;
    button.addEventListener('click', () => void showLog(file.name));
    item.append(button);
    list.append(item);
  }
}

async function showLog(name) {
  const view = $('log-view');
  view.hidden = false;
  view.textContent = `Loading ${name}…`;
  try {
    const tail = await api(`/admin/logs/${encodeURIComponent(name)}?tail=200`);
    view.textContent = tail.lines.join('\n') || '(empty)';
  } catch (error) {
    view.textContent = error.message;
  }
}
