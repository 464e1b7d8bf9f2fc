// Device: registration details, objects and resources, the firmware
// update (start, cancel, live progress) and the device's update history.

import { api, enc } from './api.js';
import { resourcesSection } from './resources.js';
import {
  checkField, dataTable, dl, emptyRow, field, fmtBytes, fmtDuration, fmtInt, fmtPercent, h, imageOptions,
  messageOf, tableWrap, tagsText, timeEl,
} from './ui.js';

const SUMMARY_REFRESH_MS = 10000;
// POLL_MS paces reading the update when its event stream cannot be had.
const POLL_MS = 2000;
const FINISHED = new Set(['done', 'failed', 'cancelled']);

function registrationPairs(d) {
  const state = d.registered
    ? `registered${d.queue_mode ? ', queue mode' : ''}`
    : 'not registered';
  const pairs = [['State', state]];
  if (d.registered) {
    pairs.push(
      ['LwM2M version', d.lwm2m_version || '—'],
      ['Binding', d.binding || '—'],
      ['Lifetime', fmtDuration(d.lifetime)],
      ['Address', d.address || '—'],
      ['Identity', d.identity || '—'],
      ['Registered at', timeEl(d.registered_at)],
      ['Last seen', timeEl(d.last_seen, true)],
      ['Expires', timeEl(d.expires_at, true)],
    );
  }
  pairs.push(
    ['Firmware version', d.firmware_version || 'unknown'],
    ['Class', d.class || '—'],
    ['Tags', tagsText(d.tags) || '—'],
    ['Provisioned', d.provisioned ? `yes${d.psk_identity ? `, PSK identity ${d.psk_identity}` : ''}` : 'no'],
  );
  if (d.link_mtu) pairs.push(['Link MTU', `${fmtInt(d.link_mtu)} B`]);
  return pairs;
}

// packageText says what was sent: the raw image, a delta or the full one.
function packageText(u) {
  if (u.raw) return 'raw image';
  const kind = u.format || (u.full ? 'full' : '—');
  return u.fell_back ? `${kind} (fell back to full)` : kind;
}

function resultText(u) {
  return u.result || u.result_text !== 'initial' ? `${u.result_text} (${u.result})` : '—';
}

// outcomeText says how a finished update ended: the device's Update
// Result when it reported one, and fotad's error unless it only repeats
// the phase.
function outcomeText(u) {
  const result = u.result ? `: ${u.result_text}` : '';
  const error = u.error && u.error !== u.phase ? ` · ${u.error}` : '';
  return `Update ${u.phase}${result}${error}`;
}

// detailText is the download's progress in blocks, bytes and time.
function detailText(u) {
  const parts = [];
  if (u.blocks) parts.push(`${fmtInt(u.blocks_served || 0)} of ${fmtInt(u.blocks)} blocks of ${fmtInt(u.block_size)} B`);
  if (u.size) parts.push(`${fmtBytes(u.bytes_served)} of ${fmtBytes(u.size, true)}`);
  parts.push(`${fmtPercent(u.progress)}`);
  parts.push(`elapsed ${fmtDuration(u.elapsed_s)}`);
  if (u.eta_s != null) parts.push(`about ${fmtDuration(u.eta_s)} left`);
  return parts.join(' · ');
}

// firmwareSection shows the current update, follows it live and starts or
// cancels one. onFinished runs when an update it watched has ended.
function firmwareSection(scope, ep, onFinished) {
  const url = `/api/v1/devices/${enc(ep)}/update`;
  const phase = h('span', { id: 'update-phase', class: 'phase' });
  const cells = {
    version: h('dd'), method: h('dd'), pkg: h('dd'), result: h('dd'), error: h('dd'),
    started: h('dd'), changed: h('dd'), deadline: h('dd'), retries: h('dd'),
  };
  const none = h('p', { class: 'muted' }, 'Loading…');
  const row = (t, dd) => h('div', null, h('dt', null, t), dd);
  const current = h('dl', { class: 'summary', hidden: true },
    h('div', null, h('dt', null, 'Phase'), h('dd', null, phase)),
    row('Target version', cells.version), row('Method', cells.method), row('Package', cells.pkg),
    row('Result', cells.result), row('Error', cells.error), row('Retries', cells.retries),
    row('Started', cells.started), row('Changed', cells.changed), row('Deadline', cells.deadline));
  const bar = h('progress', { id: 'update-progress', max: 1, value: 0 });
  const detail = h('span', { id: 'update-detail', 'aria-live': 'polite' });
  const outcome = h('p', { id: 'update-outcome', class: 'outcome' });
  const progressLine = h('div', { class: 'progress-line', hidden: true },
    h('label', { for: 'update-progress', class: 'vh' }, 'Update progress'), bar, detail);

  const image = h('select', { id: 'update-image' }, h('option', { value: '' }, 'Loading images…'));
  const full = h('input', { id: 'update-full', type: 'checkbox' });
  const push = h('input', { id: 'update-push', type: 'checkbox' });
  const start = h('button', { id: 'update-start', type: 'submit' }, 'Start update');
  const cancel = h('button', { id: 'update-cancel', type: 'button', class: 'danger', disabled: true }, 'Cancel update');
  const formError = h('p', { id: 'update-error', class: 'form-error', 'aria-live': 'assertive' });
  const form = h('form', { id: 'update-form', class: 'update-form' },
    field('Update to image', image),
    checkField('Full image (no delta)', full),
    checkField('Push (write /5/0/0 with Block1)', push),
    h('div', { class: 'buttons' }, start, cancel),
    formError);

  let running = false;
  let es = null;
  let polling = false;
  let shown = null; // the update on screen
  let starts = 0; // updates started from this page, so that load can tell its answer is stale

  const render = (u) => {
    shown = u;
    none.hidden = true;
    current.hidden = false;
    progressLine.hidden = false;
    running = !FINISHED.has(u.phase);
    phase.textContent = u.phase;
    phase.className = `phase badge phase-${u.phase}`;
    cells.version.textContent = u.version || u.image || '—';
    cells.method.textContent = u.method || '—';
    cells.pkg.textContent = packageText(u);
    cells.result.textContent = resultText(u);
    cells.error.textContent = u.error || '—';
    cells.retries.textContent = String(u.retries || 0);
    cells.started.replaceChildren(timeEl(u.started));
    cells.changed.replaceChildren(timeEl(u.changed));
    cells.deadline.replaceChildren(timeEl(u.deadline));
    bar.value = u.progress || 0;
    detail.textContent = detailText(u);
    outcome.textContent = FINISHED.has(u.phase) ? outcomeText(u) : '';
    outcome.className = `outcome phase-${u.phase}`;
    cancel.disabled = !running;
    start.disabled = running; // fotad runs one update per device
  };

  const finished = () => {
    es?.close();
    es = null;
    onFinished();
  };

  // poll reads the update until it has finished: the fallback for when
  // its event stream fails.
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      while (!scope.closed) {
        const u = await api(url, { signal: scope.signal });
        render(u);
        if (FINISHED.has(u.phase)) {
          finished();
          return;
        }
        await new Promise((r) => scope.after(POLL_MS, r));
      }
    } catch (err) {
      if (err.name !== 'AbortError') formError.textContent = `Following the update: ${messageOf(err)}`;
    } finally {
      polling = false;
    }
  };

  // follow attaches to the update's event stream, which sends the update
  // whenever it changes and ends after it has finished.
  const follow = () => {
    es?.close();
    es = scope.stream(`${url}/events`, 'update', (u) => {
      render(u);
      if (FINISHED.has(u.phase)) finished();
    }, { onFail: poll });
  };

  const load = async () => {
    const before = starts;
    try {
      const u = await api(url, { signal: scope.signal });
      if (starts !== before) return; // an update started meanwhile, and is followed
      render(u);
      if (running) follow();
    } catch (err) {
      if (err.status === 404) none.textContent = 'No update has run on this device yet.';
      else if (err.name !== 'AbortError') none.textContent = `Update status unavailable: ${messageOf(err)}`;
    }
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    formError.textContent = '';
    if (!image.value) {
      formError.textContent = 'Choose an image first.';
      return;
    }
    start.disabled = true;
    starts++;
    // The last update's phase must not stand for the new one's while the
    // request is on its way.
    phase.textContent = '';
    try {
      const u = await api(url, {
        method: 'POST', json: { image: image.value, full: full.checked, push: push.checked }, signal: scope.signal,
      });
      render(u);
      follow();
    } catch (err) {
      if (shown) render(shown);
      formError.textContent = messageOf(err);
      start.disabled = running;
    }
  });

  cancel.addEventListener('click', async () => {
    formError.textContent = '';
    cancel.disabled = true;
    try {
      await api(url, { method: 'DELETE', signal: scope.signal });
      render(await api(url, { signal: scope.signal }));
      finished();
    } catch (err) {
      formError.textContent = messageOf(err);
      cancel.disabled = !running;
    }
  });

  // setDevice fills the image choice with the images of the device's
  // class, or every image when it has none.
  let imagesFor = null;
  const setDevice = async (device) => {
    const cls = device.class || '';
    if (imagesFor === cls) return;
    imagesFor = cls;
    try {
      const { images } = await api('/api/v1/images', { signal: scope.signal });
      const fit = cls ? images.filter((i) => i.class === cls) : images;
      image.replaceChildren(...(fit.length ? imageOptions(fit)
        : [h('option', { value: '' }, cls ? `No images of class ${cls}` : 'No images stored')]));
    } catch (err) {
      if (err.name === 'AbortError') return;
      imagesFor = null;
      image.replaceChildren(h('option', { value: '' }, 'Images unavailable'));
      formError.textContent = `Loading images: ${messageOf(err)}`;
    }
  };

  load();
  const node = h('section', { class: 'card', 'aria-labelledby': 'firmware-h' },
    h('h2', { id: 'firmware-h' }, 'Firmware'),
    h('h3', null, 'Current update'),
    none, current,
    progressLine,
    outcome,
    h('h3', null, 'Start an update'),
    form);
  return { node, setDevice };
}

function historyRow(u) {
  return h('tr', null,
    h('td', null, timeEl(u.started)),
    h('td', null, u.version || u.image || '—'),
    h('td', null, u.method || '—'),
    h('td', null, packageText(u)),
    h('td', { class: 'num' }, u.size ? fmtBytes(u.size, true) : '—'),
    h('td', null, h('span', { class: `badge phase-${u.phase}` }, u.phase)),
    h('td', null, resultText(u)),
    h('td', null, String(u.retries || 0)),
    h('td', null, u.error || '—'));
}

// historySection lists the device's updates, newest first; load reads
// them again.
function historySection(scope, ep) {
  const tbody = h('tbody', null, emptyRow(9, 'Loading…'));
  const table = dataTable({ id: 'update-history' }, 'Update history',
    ['Started', 'Version', 'Method', 'Package', 'Size', 'Phase', 'Result', 'Retries', 'Error'], tbody);
  const load = async () => {
    try {
      const { updates } = await api(`/api/v1/devices/${enc(ep)}/updates`, { signal: scope.signal });
      tbody.replaceChildren(...(updates.length ? updates.map(historyRow) : [emptyRow(9, 'No updates yet.')]));
    } catch (err) {
      if (err.name !== 'AbortError') tbody.replaceChildren(emptyRow(9, `History unavailable: ${messageOf(err)}`));
    }
  };
  load();
  const node = h('section', { class: 'card', 'aria-labelledby': 'history-h' },
    h('h2', { id: 'history-h' }, 'Update history'), tableWrap(table, 'Past updates'));
  return { node, load };
}

export function devicePage(scope, ep) {
  scope.title(`Device ${ep}`);
  const summary = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const resources = resourcesSection(scope, ep);
  const history = historySection(scope, ep);
  // A finished update changes the history and the installed version.
  const firmware = firmwareSection(scope, ep, () => {
    history.load();
    loadDevice().catch(() => {}); // the next poll reports a failure
  });
  async function loadDevice() {
    try {
      const d = await api(`/api/v1/devices/${enc(ep)}`, { signal: scope.signal });
      summary.replaceChildren(dl(registrationPairs(d), { id: 'device-summary' }));
      resources.update(d);
      firmware.setDevice(d);
    } catch (err) {
      if (err.status !== 404) throw err;
      summary.replaceChildren(h('p', { class: 'form-error' }, messageOf(err)));
    }
  }
  scope.poll(SUMMARY_REFRESH_MS, loadDevice, 'Loading the device');

  return h('section', null,
    h('p', { class: 'crumbs' }, h('a', { href: '#/fleet' }, 'Fleet'), ' / ', ep),
    h('h1', { id: 'device-title' }, 'Device ', h('span', { class: 'mono' }, ep)),
    h('section', { class: 'card', 'aria-labelledby': 'summary-h' }, h('h2', { id: 'summary-h' }, 'Summary'), summary),
    firmware.node,
    resources.node,
    history.node);
}
