// The dashboard of `cutover serve`. Plain JavaScript, no build step. Journal text is only
// ever set as text (textContent), never as HTML.
'use strict';

const TOKEN_KEY = 'cutover-token';
const $ = (sel) => document.querySelector(sel);

let selected = null;     // the rollout shown
let source = null;       // the EventSource
let rollout = null;      // its last timeline
let list = [];           // the last list of rollouts
let waiting = null;      // an action waiting for the token or the confirmation

const ABOUT = {
  approve: ['Approve', 'Release the gate the rollout waits at; it goes on with the next stages.'],
  abort: ['Abort', 'Stop the rollout: steps in flight are interrupted and their targets undone.'],
  rollback: ['Roll back', 'Undo every updated target of the rollout.'],
  resume: ['Resume', 'Go on with the rollout where it stopped, in the direction it was going.'],
};

/** An element with attributes (`text` sets its text) and children. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') e.textContent = String(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

function duration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function clock(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function badge(status) {
  return el('span', { class: 'badge', 'data-status': status, text: status });
}

// ---- the list ----

function renderList(rows) {
  list = rows;
  const body = $('#rollouts');
  body.replaceChildren(...rows.map((r) => {
    const tr = el('tr', { 'data-rollout': r.id, 'data-status': r.status, 'aria-selected': r.id === selected ? 'true' : 'false', title: r.advice },
      el('td', { text: r.id }),
      el('td', { text: r.name }),
      el('td', {}, badge(r.status)),
      el('td', { text: `${r.updated}/${r.targets}` + (r.failed ? ` (${r.failed} failed)` : '') }));
    tr.addEventListener('click', () => select(r.id));
    return tr;
  }));
  $('#empty').hidden = rows.length > 0;
  if (selected === null && rows.length > 0) select(rows[0].id);
}

// ---- one rollout ----

function stepChip(s) {
  const running = s.ended_ms === null || s.ended_ms === undefined;
  const time = running ? el('span', { class: 'elapsed', 'data-since': s.started_ms }) : duration(s.duration_ms);
  const tip = [`${s.action} ${s.step}, attempt ${s.attempt}`, `started ${clock(s.started_ms)}`];
  if (s.error) tip.push(s.error);
  for (const o of s.outputs) tip.push(`${o.key} = ${o.value}`);
  return el('span', { class: 'chip', 'data-step': s.step, 'data-state': s.state, 'data-action': s.action, title: tip.join('\n') },
    `${s.step} `, time);
}

function stageItem(s, r) {
  const li = el('li', { 'data-stage': s.index, 'data-kind': s.kind, 'data-state': s.state });
  li.append(el('div', { class: 'what', text: `${s.index + 1}. ${s.describe}` }));
  if (s.kind === 'wave') {
    const states = new Map(r.targets.map((t) => [t.id, t.state]));
    li.append(el('div', {}, s.targets.map((t) => el('span', { class: 'chip', 'data-target': t, 'data-state': states.get(t) || 'pending', text: t }))));
  } else if (s.kind === 'approval') {
    const note = s.approved ? 'approved' : s.state === 'current' && r.status === 'paused' ? 'waiting for approval' : '';
    if (note) li.append(el('div', { class: s.approved ? 'muted' : 'gate', text: note }));
  } else if (s.kind === 'analysis') {
    const taken = r.measurements.filter((m) => m.stage === s.index && m.outcome !== 'resume');
    li.append(el('div', {}, taken.map((m) => el('span', {
      class: 'chip', 'data-outcome': m.outcome, title: m.detail,
      text: `${m.value === null ? '–' : m.value} ${m.outcome}`,
    }))));
  } else if (s.kind === 'soak' && s.state === 'current' && r.status === 'running') {
    li.append(el('div', { class: 'gate', text: 'soaking' }));
  } else if (s.kind === 'fleet') {
    const steps = r.fleet_steps.filter((f) => f.stage === s.index);
    if (steps.length) li.append(el('div', {}, steps.map(stepChip)));
  }
  return li;
}

function actionButton(r, action) {
  const kind = action === 'abort' || action === 'rollback' ? 'stop' : 'go';
  const b = el('button', { id: `act-${action}`, type: 'button', 'data-kind': kind, disabled: !r.allowed[action], text: ABOUT[action][0] });
  b.addEventListener('click', () => ask(action));
  return b;
}

function renderDetail(r) {
  rollout = r;
  const d = $('#detail');
  const parts = [
    el('div', { class: 'title' },
      el('h2', { 'data-rollout': r.id, text: `#${r.id} ${r.name}` }),
      el('span', { id: 'status', class: 'badge', 'data-status': r.status, text: r.status }),
      r.direction === 'rollback' ? el('span', { class: 'muted', text: 'rolling back' }) : null),
    r.advice !== r.status ? el('p', { class: 'advice', id: 'advice', text: r.advice }) : null,
    r.reason ? el('p', { class: 'muted', id: 'reason', text: r.reason }) : null,
    el('p', { class: 'muted', text: `started ${clock(r.created_ms)} · ${r.spec}` }),
    el('div', { class: 'actions' }, ['approve', 'resume', 'abort', 'rollback'].map((a) => actionButton(r, a))),
  ];
  if (r.busy) parts.push(el('p', { class: 'muted', text: 'an action started here is running' }));
  parts.push(el('h3', { text: 'Timeline' }));
  parts.push(r.stages.length
    ? el('ol', { class: 'stages', id: 'stages' }, r.stages.map((s) => stageItem(s, r)))
    : el('p', { class: 'muted', text: 'not planned yet' }));
  if (r.targets.length) {
    parts.push(el('h3', { text: 'Targets' }));
    parts.push(el('table', { id: 'targets' },
      el('thead', {}, el('tr', {}, el('th', { text: 'target' }), el('th', { text: 'state' }), el('th', { text: 'steps' }), el('th', { text: 'detail' }))),
      el('tbody', {}, r.targets.map((t) => el('tr', { 'data-target': t.id, 'data-state': t.state },
        el('td', { text: t.id }),
        el('td', {}, el('span', { class: 'chip', 'data-state': t.state, text: t.state })),
        el('td', {}, t.steps.map(stepChip)),
        el('td', { class: 'muted', text: t.detail }))))));
  }
  if (r.measurements.length) {
    parts.push(el('h3', { text: 'Analysis' }));
    parts.push(el('table', { id: 'measurements' },
      el('thead', {}, el('tr', {}, ['time', 'stage', 'analysis', 'value', 'outcome', 'detail'].map((h) => el('th', { text: h })))),
      el('tbody', {}, r.measurements.map((m) => el('tr', { 'data-outcome': m.outcome },
        el('td', { text: m.ts ? clock(m.ts) : '' }),
        el('td', { text: m.stage === null ? '' : m.stage + 1 }),
        el('td', { text: m.analysis || '' }),
        el('td', { text: m.value === null ? '' : m.value }),
        el('td', { text: m.outcome || '' }),
        el('td', { class: 'muted', text: m.detail || '' }))))));
  }
  if (r.actions.length) {
    parts.push(el('h3', { text: 'Operator actions' }));
    parts.push(el('table', { id: 'actions' },
      el('thead', {}, el('tr', {}, ['when', 'action', 'who', 'result'].map((h) => el('th', { text: h })))),
      el('tbody', {}, r.actions.map((a) => el('tr', { 'data-action': a.action },
        el('td', { text: clock(a.ts) }), el('td', { text: a.action }), el('td', { text: a.who }), el('td', { text: a.result }))))));
  }
  parts.push(el('h3', { text: 'Log' }));
  parts.push(r.events.length
    ? el('div', { class: 'log', id: 'log' }, r.events.map((e) => el('div', { 'data-level': e.level },
      `${clock(e.ts).slice(11)} [${e.level}] ${e.target || 'fleet'}${e.step ? ' ' + e.step : ''}: ${e.message}`)))
    : el('p', { class: 'muted', text: 'no log lines' }));
  const log = $('#log');
  const atEnd = !log || log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  d.replaceChildren(...parts.filter(Boolean));
  const fresh = $('#log');
  if (fresh && atEnd) fresh.scrollTop = fresh.scrollHeight;
  tick();
}

/** Running steps show how long they have been running. */
function tick() {
  for (const e of document.querySelectorAll('.elapsed[data-since]')) {
    e.textContent = duration(Math.max(0, Date.now() - Number(e.dataset.since)));
  }
}

// ---- live updates ----

function connect() {
  if (source) source.close();
  source = new EventSource('/api/events' + (selected === null ? '' : `?rollout=${selected}`));
  source.addEventListener('open', () => { $('#live').dataset.live = 'yes'; $('#live').textContent = 'live'; });
  source.addEventListener('error', () => { $('#live').dataset.live = 'no'; $('#live').textContent = 'reconnecting'; });
  source.addEventListener('rollouts', (e) => renderList(JSON.parse(e.data)));
  source.addEventListener('rollout', (e) => {
    const r = JSON.parse(e.data);
    if (r.id === selected) renderDetail(r);
  });
}

function select(id) {
  if (id === selected) return;
  selected = id;
  rollout = null;
  history.replaceState(null, '', `#rollout=${id}`);
  $('#detail').replaceChildren(el('p', { class: 'muted', text: `Loading rollout ${id}…` }));
  for (const tr of document.querySelectorAll('#rollouts tr')) {
    tr.setAttribute('aria-selected', Number(tr.dataset.rollout) === id ? 'true' : 'false');
  }
  connect();
}

// ---- actions ----

function flash(text, kind) {
  const f = $('#flash');
  f.textContent = text;
  f.dataset.kind = kind || 'info';
  f.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { f.hidden = true; }, 8000);
}

function modal(which) {
  $('#overlay').hidden = which === null;
  $('#token-modal').hidden = which !== 'token';
  $('#confirm-modal').hidden = which !== 'confirm';
  if (which === 'token') { $('#token-input').value = ''; $('#token-input').focus(); }
}

/** An action button was clicked: get the token if there is none, then confirm. */
function ask(action) {
  if (!rollout) return;
  waiting = { action, id: rollout.id, name: rollout.name };
  if (!sessionStorage.getItem(TOKEN_KEY)) { modal('token'); return; }
  confirmAction();
}

function confirmAction() {
  const { action, id, name } = waiting;
  $('#confirm-title').textContent = `${ABOUT[action][0]} rollout ${id} (${name})?`;
  $('#confirm-text').textContent = ABOUT[action][1];
  $('#confirm-yes').textContent = ABOUT[action][0];
  modal('confirm');
}

async function send() {
  const { action, id } = waiting;
  waiting = null;
  modal(null);
  let res;
  try {
    res = await fetch(`/api/rollouts/${id}/${action}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ''}` },
    });
  } catch (e) {
    flash(`${action}: the server did not answer`, 'error');
    return;
  }
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    flash('The token was refused: enter it again.', 'error');
    return;
  }
  if (!res.ok) flash(`${action}: ${body.error || res.statusText}`, 'error');
  else flash(`${action} rollout ${id}: ${body.result}`);
}

$('#token-btn').addEventListener('click', () => { waiting = null; modal('token'); });
$('#token-cancel').addEventListener('click', () => { waiting = null; modal(null); });
$('#token-save').addEventListener('click', () => {
  const t = $('#token-input').value.trim();
  $('#token-input').value = '';
  if (!t) return;
  sessionStorage.setItem(TOKEN_KEY, t);
  if (waiting) confirmAction(); else { modal(null); flash('Token kept for this tab.'); }
});
$('#token-input').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('#token-save').click(); });
$('#confirm-no').addEventListener('click', () => { waiting = null; modal(null); });
$('#confirm-yes').addEventListener('click', send);
document.addEventListener('keydown', (e) => { if (e.key === 'Escape') { waiting = null; modal(null); } });

setInterval(tick, 1000);
const m = /rollout=(\d+)/.exec(location.hash);
if (m) select(Number(m[1])); else connect();
