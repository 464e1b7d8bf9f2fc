// DOM construction, formatting and small widgets shared by the pages.
// Everything user-controlled (endpoints, tags, messages) goes into the
// page as text nodes or attributes, never as HTML.

// Attributes set as properties: their attribute form only sets the
// initial state (value, checked) or they have no attribute (indeterminate).
const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'indeterminate']);

function build(el, attrs, children) {
  append(el, children); // before attrs, so that a select's value finds its option
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'style') {
      throw new Error('inline styles break the Content-Security-Policy: use a class');
    } else if (PROPS.has(k) && !(el instanceof SVGElement)) {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// h('a', {href: '#/fleet', class: 'x', onclick: fn}, 'text', node, [more])
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// ---- numbers ----

const intFormat = new Intl.NumberFormat('en-US');

export function fmtInt(n) {
  return n == null || !Number.isFinite(n) ? '—' : intFormat.format(n);
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

// fmtBytes(390867) is "381.7 KiB"; exact adds the byte count:
// "381.7 KiB (390,867 B)".
export function fmtBytes(n, exact = false) {
  if (n == null || !Number.isFinite(n)) return '—';
  if (Math.abs(n) < 1024) return `${fmtInt(n)} B`;
  let v = n / 1024;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const short = `${v.toFixed(1)} ${UNITS[u]}`;
  return exact ? `${short} (${fmtInt(n)} B)` : short;
}

// fmtPercent(0.4237) is "42.3%". It rounds down so that a transfer one
// block short of the end never reads 100%.
export function fmtPercent(fraction) {
  if (fraction == null || !Number.isFinite(fraction)) return '—';
  const p = Math.floor(fraction * 1000) / 10;
  return `${Number.isInteger(p) ? p : p.toFixed(1)}%`;
}

// fmtDuration(80) is "1 min 20 s": the two largest units, enough to read.
export function fmtDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  if (seconds > 0 && seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  let s = Math.round(Math.abs(seconds));
  const parts = [];
  for (const [size, unit] of [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']]) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0 || (unit === 's' && parts.length === 0)) parts.push(`${n} ${unit}`);
  }
  return parts.slice(0, 2).join(' ');
}

// nsToSeconds converts a Go time.Duration marshalled as a number.
export function nsToSeconds(ns) {
  return ns == null ? null : ns / 1e9;
}

// compareVersions orders "1.10.0" after "1.9.2"; non-numeric parts
// compare as text.
export function compareVersions(a, b) {
  const pa = String(a).split(/([0-9]+)/);
  const pb = String(b).split(/([0-9]+)/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    if (x === y) continue;
    const nx = Number(x);
    const ny = Number(y);
    if (x !== '' && y !== '' && Number.isFinite(nx) && Number.isFinite(ny)) return nx - ny;
    return x < y ? -1 : 1;
  }
  return 0;
}

// ---- times ----

// parseTime reads an RFC 3339 time; null for none or Go's zero time.
function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) || d.getUTCFullYear() <= 1 ? null : d;
}

const pad = (n) => String(n).padStart(2, '0');

function utcText(d) {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

// localText leaves the date out when it is the UTC one.
function localText(d) {
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay = d.getFullYear() === d.getUTCFullYear() && d.getMonth() === d.getUTCMonth() &&
    d.getDate() === d.getUTCDate();
  return sameDay ? clock : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}`;
}

export function fmtTimeText(iso) {
  const d = parseTime(iso);
  return d ? `${utcText(d)} UTC (${localText(d)} local)` : '—';
}

// timeParts is fmtTimeText in two pieces that a narrow column may put on
// two lines, without breaking either.
function timeParts(d) {
  return [h('span', { class: 'nowrap' }, `${utcText(d)} UTC`), ' ', h('span', { class: 'nowrap' }, `(${localText(d)} local)`)];
}

export function fmtAgo(iso) {
  const d = parseTime(iso);
  if (!d) return '';
  const s = (Date.now() - d.getTime()) / 1000;
  return s >= 0 ? `${fmtDuration(Math.max(1, s))} ago` : `in ${fmtDuration(-s)}`;
}

// timeEl is "2026-11-26 16:40:12 UTC (17:40:12 local)" in a <time>, with
// the age beside it when ago is set.
export function timeEl(iso, ago = false) {
  const d = parseTime(iso);
  if (!d) return document.createTextNode('—');
  const t = h('time', { datetime: d.toISOString() }, timeParts(d));
  return ago ? h('span', null, t, h('span', { class: 'muted' }, ` · ${fmtAgo(iso)}`)) : t;
}

// ---- errors ----

// ignorable errors need no message: a request the page cancelled by
// leaving, or a 401, which shows the sign-in view instead.
export function ignorable(err) {
  return err?.name === 'AbortError' || err?.status === 401;
}

export function messageOf(err) {
  if (typeof err === 'string') return err;
  return err?.message || String(err);
}

const MAX_BANNER_MESSAGES = 3;

// showError puts a message at the top of the page's banner, which keeps
// the last few different ones; context says what was being done
// ("Loading devices").
export function showError(err, context) {
  if (ignorable(err)) return;
  const text = context ? `${context}: ${messageOf(err)}` : messageOf(err);
  const box = document.getElementById('error');
  const earlier = [...box.querySelectorAll('.banner-text')].map((p) => p.textContent).filter((t) => t !== text);
  box.replaceChildren(
    h('div', { class: 'banner-messages' },
      [text, ...earlier].slice(0, MAX_BANNER_MESSAGES).map((t) => h('p', { class: 'banner-text' }, t))),
    h('button', { type: 'button', class: 'banner-close', onclick: clearError }, 'Dismiss'),
  );
}

export function clearError() {
  document.getElementById('error').replaceChildren();
}

// ---- widgets ----

// tableWrap lets a wide table scroll on its own on a narrow screen; the
// region is focusable so that keyboard users can scroll it too.
export function tableWrap(table, label) {
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: 0 }, table);
}

// dataTable builds a table with a header row; body is its <tr>s, or the
// <tbody> itself for a table whose rows the page replaces later.
export function dataTable(attrs, caption, headers, body) {
  return h('table', attrs,
    caption ? h('caption', { class: 'vh' }, caption) : null,
    h('thead', null, h('tr', null, headers.map((t) => h('th', { scope: 'col' }, t)))),
    body instanceof HTMLTableSectionElement ? body : h('tbody', null, body));
}

// emptyRow is a tbody row that says the table has nothing to show.
export function emptyRow(columns, text) {
  return h('tr', { class: 'empty' }, h('td', { colspan: columns }, text));
}

// confirmButton asks for a second click before onConfirm runs, in the
// page rather than with confirm(), which automated tests cannot answer.
// It falls back to its first label after a few seconds or on Escape.
export function confirmButton(attrs, label, confirmLabel, onConfirm) {
  let timer = 0;
  const btn = h('button', { type: 'button', ...attrs }, label);
  const disarm = () => {
    clearTimeout(timer);
    btn.classList.remove('armed');
    btn.textContent = label;
  };
  btn.addEventListener('click', () => {
    if (!btn.classList.contains('armed')) {
      btn.classList.add('armed');
      btn.textContent = confirmLabel;
      timer = setTimeout(disarm, 8000);
      return;
    }
    disarm();
    onConfirm();
  });
  btn.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') disarm();
  });
  btn.disarm = disarm;
  return btn;
}

// field is a label and its control, stacked.
export function field(label, control, hint) {
  const hintEl = hint ? h('span', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

// checkField is a checkbox with its label beside it.
export function checkField(label, control) {
  return h('div', { class: 'field check' }, control, h('label', { for: control.id }, label));
}

// dl builds a description list from [term, value] pairs; null values are
// left out.
export function dl(pairs, attrs) {
  return h('dl', { class: 'summary', ...attrs },
    pairs.filter(([, v]) => v != null).map(([t, v]) => h('div', null, h('dt', null, t), h('dd', null, v))));
}

// shortDigest shows the first 12 hex digits, the full digest on hover.
export function shortDigest(digest) {
  if (!digest) return document.createTextNode('—');
  return h('code', { title: digest }, digest.length > 12 ? `${digest.slice(0, 12)}…` : digest);
}

export function deviceLink(ep) {
  return h('a', { href: `#/device/${encodeURIComponent(ep)}` }, ep);
}

export function tagsText(tags) {
  return Object.entries(tags || {}).map(([k, v]) => (v ? `${k}=${v}` : k)).join(', ');
}

// imageLabel is "2.0.0 (meter, native, 381.7 KiB)".
function imageLabel(img) {
  return `${img.version} (${img.class}, ${img.format}, ${fmtBytes(img.size)})`;
}

// imageOptions lists images for a select: by class, newest version first.
// The value is the version, which the API resolves, unless two of the
// listed images share it (other classes), where only the digest is
// unambiguous.
export function imageOptions(images) {
  const sorted = [...images].sort((a, b) =>
    a.class.localeCompare(b.class) || compareVersions(b.version, a.version));
  const counts = new Map();
  for (const img of sorted) counts.set(img.version, (counts.get(img.version) || 0) + 1);
  return sorted.map((img) =>
    h('option', { value: counts.get(img.version) > 1 ? img.digest : img.version }, imageLabel(img)));
}
