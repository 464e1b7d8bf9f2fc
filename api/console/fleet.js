// Fleet: every device with its registration and update state, filters,
// and a chart of the firmware versions the fleet runs.

import { api } from './api.js';
import {
  compareVersions, dataTable, deviceLink, emptyRow, fmtAgo, fmtInt, fmtPercent, h, svg, tableWrap, tagsText, timeEl,
} from './ui.js';

const REFRESH_MS = 5000;
const FINISHED = new Set(['done', 'failed', 'cancelled']);
const UNKNOWN = ''; // the version filter's value for devices that never reported one

const STATES = [
  ['all', 'All'],
  ['registered', 'Registered'],
  ['not-registered', 'Not registered'],
  ['updating', 'Updating'],
  ['failed', 'Update failed'],
];

const stateTests = {
  all: () => true,
  registered: (d) => d.registered,
  'not-registered': (d) => !d.registered,
  updating: (d) => d.update != null && !FINISHED.has(d.update.phase),
  failed: (d) => d.update?.phase === 'failed',
};

function matchesSearch(d, q) {
  if (!q) return true;
  const hay = [d.endpoint, d.firmware_version, d.class, d.update?.version,
    ...Object.entries(d.tags || {}).map(([k, v]) => `${k}=${v}`)];
  return hay.some((s) => s && s.toLowerCase().includes(q));
}

function registrationCell(d) {
  if (!d.registered) return h('td', null, h('span', { class: 'badge off' }, 'not registered'));
  return h('td', null, h('span', { class: 'badge on' }, 'registered'),
    d.queue_mode ? h('span', { class: 'badge' }, 'queue mode') : null);
}

function updateCell(u) {
  if (!u) return h('td', { class: 'muted' }, '—');
  const pct = FINISHED.has(u.phase) ? '' : ` ${fmtPercent(u.progress)}`;
  const badge = h('span', { class: `badge phase-${u.phase}` }, `${u.phase}${pct}`);
  const to = u.version ? ` → ${u.version}` : '';
  const why = u.phase === 'failed' && u.result_text ? ` (${u.result_text})` : '';
  return h('td', null, badge, to + why);
}

function deviceRow(d) {
  return h('tr', { dataset: { endpoint: d.endpoint } },
    h('th', { scope: 'row' }, deviceLink(d.endpoint)),
    registrationCell(d),
    h('td', null, d.last_seen ? [timeEl(d.last_seen), h('br'), h('span', { class: 'muted' }, fmtAgo(d.last_seen))] : '—'),
    h('td', null, d.lwm2m_version || '—'),
    h('td', null, d.binding || '—'),
    h('td', null, d.firmware_version || h('span', { class: 'muted' }, 'unknown'),
      d.class ? h('span', { class: 'muted' }, ` · ${d.class}`) : null,
      Object.keys(d.tags || {}).length ? h('div', { class: 'muted small' }, tagsText(d.tags)) : null),
    updateCell(d.update));
}

// versionCounts counts devices per installed version, most common first,
// unknown last.
function versionCounts(devices) {
  const counts = new Map();
  for (const d of devices) {
    const v = d.firmware_version || UNKNOWN;
    counts.set(v, (counts.get(v) || 0) + 1);
  }
  return [...counts].sort((a, b) =>
    (a[0] === UNKNOWN) - (b[0] === UNKNOWN) || b[1] - a[1] || compareVersions(b[0], a[0]));
}

const versionName = (v) => (v === UNKNOWN ? 'unknown' : v);

// drawChart draws one horizontal bar per version. The SVG is one image to
// assistive technology, described by its aria-label. Its coordinates are
// the CSS pixels it is shown in, so that the text keeps its size on a
// narrow screen.
function drawChart(chart, devices) {
  const counts = versionCounts(devices);
  const total = devices.length;
  const width = Math.max(320, Math.round(chart.getBoundingClientRect().width) || 620);
  const rowH = 30;
  const labelW = 110;
  const barW = Math.min(300, width - labelW - 150);
  const height = Math.max(1, counts.length) * rowH + 4;
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const summary = counts.map(([v, n]) => `${versionName(v)}: ${n} (${fmtPercent(n / total)})`).join('; ');
  chart.setAttribute('aria-label', total ? `Firmware versions across ${total} devices: ${summary}` : 'No devices');
  const max = Math.max(1, ...counts.map(([, n]) => n));
  chart.replaceChildren(...counts.map(([v, n], i) => {
    const y = i * rowH + 2;
    const w = Math.max(2, (n / max) * barW);
    const name = versionName(v);
    return svg('g', { class: v === UNKNOWN ? 'unknown' : null },
      svg('text', { x: labelW - 8, y: y + rowH / 2, class: 'bar-label', 'text-anchor': 'end', 'dominant-baseline': 'middle' },
        name.length > 16 ? `${name.slice(0, 15)}…` : name, svg('title', null, name)),
      svg('rect', { x: labelW, y: y + 4, width: w, height: rowH - 8, rx: 3, class: 'bar' }),
      svg('text', { x: labelW + w + 8, y: y + rowH / 2, class: 'bar-value', 'dominant-baseline': 'middle' },
        `${n} ${n === 1 ? 'device' : 'devices'} (${fmtPercent(n / total)})`));
  }));
}

// fillVersions rebuilds the version filter's options and keeps the chosen
// one, even when no device runs it any more.
function fillVersions(select, devices) {
  const chosen = select.value;
  const counts = versionCounts(devices);
  if (chosen !== 'all' && !counts.some(([v]) => v === chosen)) counts.push([chosen, 0]);
  select.replaceChildren(h('option', { value: 'all' }, 'All versions'),
    ...counts.map(([v, n]) => h('option', { value: v }, `${versionName(v)} (${n})`)));
  select.value = chosen;
}

export function fleetPage(scope) {
  scope.title('Fleet');
  let devices = [];
  const search = h('input', { id: 'fleet-search', type: 'search', placeholder: 'endpoint, version, class, tag', autocomplete: 'off' });
  const state = h('select', { id: 'fleet-filter-state' }, STATES.map(([v, t]) => h('option', { value: v }, t)));
  const version = h('select', { id: 'fleet-filter-version' }, h('option', { value: 'all' }, 'All versions'));
  const count = h('p', { id: 'fleet-count', class: 'count' }, 'Loading devices…');
  const chart = svg('svg', { id: 'version-chart', role: 'img', class: 'chart', 'aria-label': 'Loading' });
  const tbody = h('tbody', null, emptyRow(7, 'Loading…'));
  const table = dataTable({ id: 'fleet-table' }, 'Devices',
    ['Endpoint', 'Registration', 'Last seen', 'LwM2M', 'Binding', 'Firmware', 'Update'], tbody);

  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = devices.filter((d) => stateTests[state.value](d) && matchesSearch(d, q) &&
      (version.value === 'all' || (d.firmware_version || UNKNOWN) === version.value));
    const registered = devices.filter((d) => d.registered).length;
    count.textContent = `${fmtInt(devices.length)} ${devices.length === 1 ? 'device' : 'devices'}, ` +
      `${fmtInt(registered)} registered` + (shown.length !== devices.length ? ` · ${fmtInt(shown.length)} shown` : '');
    // Keep keyboard focus on the same device's link across a refresh.
    const focused = document.activeElement?.closest?.('#fleet-table tr[data-endpoint]')?.dataset.endpoint;
    tbody.replaceChildren(...(shown.length ? shown.map(deviceRow)
      : [emptyRow(7, devices.length ? 'No device matches the filters.' : 'No devices are provisioned.')]));
    if (focused != null) {
      [...tbody.rows].find((r) => r.dataset.endpoint === focused)?.querySelector('a')?.focus();
    }
  };

  for (const el of [search, state, version]) el.addEventListener('input', render);

  scope.poll(REFRESH_MS, async () => {
    const body = await api('/api/v1/devices', { signal: scope.signal });
    devices = body.devices.sort((a, b) => a.endpoint.localeCompare(b.endpoint));
    fillVersions(version, devices);
    drawChart(chart, devices);
    render();
  }, 'Loading devices');

  return h('section', null,
    h('h1', null, 'Fleet'),
    count,
    h('section', { class: 'card', 'aria-labelledby': 'chart-h' },
      h('h2', { id: 'chart-h' }, 'Firmware versions'),
      chart),
    h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter devices' },
      h('div', { class: 'field' }, h('label', { for: 'fleet-search' }, 'Search'), search),
      h('div', { class: 'field' }, h('label', { for: 'fleet-filter-state' }, 'State'), state),
      h('div', { class: 'field' }, h('label', { for: 'fleet-filter-version' }, 'Firmware version'), version)),
    tableWrap(table, 'Devices'));
}
