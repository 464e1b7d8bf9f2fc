// Campaigns: the list, the form that plans (dry run) and creates one, and
// a campaign's live page.

import { api, enc } from './api.js';
import {
  checkField, confirmButton, dataTable, deviceLink, dl, emptyRow, field, fmtBytes, fmtDuration, fmtInt, fmtPercent,
  h, imageOptions, messageOf, nsToSeconds, shortDigest, tableWrap, tagsText, timeEl,
} from './ui.js';

const LIST_REFRESH_MS = 5000;
// A campaign's devices change with its progress; reading them all again
// is bounded to one request per TARGETS_REFRESH_MS.
const TARGETS_REFRESH_MS = 3000;
const MAX_TARGET_ROWS = 1000;
const TARGET_STATES = ['pending', 'running', 'done', 'failed', 'cancelled', 'skipped', 'expired'];
const ENDED = new Set(['done', 'failed', 'cancelled', 'skipped', 'expired']);

// ended counts the devices that have ended, in counts by state.
function ended(counts) {
  return Object.entries(counts || {}).reduce((n, [s, c]) => n + (ENDED.has(s) ? c : 0), 0);
}

function campaignHref(id) {
  return `#/campaign/${encodeURIComponent(id)}`;
}

function countsText(counts) {
  const parts = TARGET_STATES.filter((s) => counts?.[s]).map((s) => `${counts[s]} ${s}`);
  return parts.length ? parts.join(', ') : '—';
}

// ---- the spec form ----

// list reads a comma-separated list, ignoring blanks.
const list = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);

// parseWaves reads "1, 10%" into [{count: 1}, {percent: 10}]: the devices
// left over form the last wave, as the server does.
function parseWaves(text, soakSeconds) {
  const waves = [];
  for (const raw of list(text)) {
    let wave;
    const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(raw);
    if (pct) wave = { percent: Number(pct[1]) };
    else if (/^\d+$/.test(raw)) wave = { count: Number(raw) };
    else throw new Error(`wave "${raw}" is neither a device count (10) nor a percentage (25%)`);
    if (soakSeconds > 0) wave.soak = `${soakSeconds}s`; // Go duration syntax
    waves.push(wave);
  }
  return waves;
}

// parseTags reads "k=v,k2=v2"; a bare "k" matches any value.
function parseTags(text) {
  const tags = {};
  for (const item of list(text)) {
    const i = item.indexOf('=');
    if (i === 0) throw new Error(`tag "${item}" has no name`);
    if (i < 0) tags[item] = '';
    else tags[item.slice(0, i).trim()] = item.slice(i + 1).trim();
  }
  return tags;
}

function intOf(input) {
  const v = input.value.trim();
  if (v === '') return 0;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${input.labels?.[0]?.textContent || input.id}: ${v} is not a whole number`);
  return n;
}

function planSummary(plan) {
  const saving = plan.full_bytes > 0 ? ` (saves ${fmtPercent(1 - plan.bytes / plan.full_bytes)})` : '';
  return dl([
    ['Image', `${plan.version} (${plan.class})`],
    ['Devices', `${fmtInt(plan.devices.length)}: ${plan.delta} delta, ${plan.full} full, ${plan.skip} skip`],
    ['Waves', plan.waves.map((n, i) => `wave ${i + 1}: ${n}`).join(', ')],
    ['Bytes to send', `${fmtBytes(plan.bytes, true)} vs ${fmtBytes(plan.full_bytes, true)} full images only${saving}`],
  ], { id: 'campaign-plan-counts' });
}

function planDeviceRow(d) {
  const payload = d.skip ? 'skip' : d.format || 'full';
  return h('tr', { dataset: { endpoint: d.endpoint } },
    h('th', { scope: 'row' }, deviceLink(d.endpoint)),
    h('td', null, String(d.wave + 1)),
    h('td', null, d.installed || h('span', { class: 'muted' }, 'unknown')),
    h('td', null, h('span', { class: `badge payload-${payload}` }, payload)),
    h('td', { class: 'num' }, d.size ? fmtBytes(d.size, true) : '—'),
    h('td', { class: 'num' }, d.full_size ? fmtBytes(d.full_size) : '—'),
    h('td', null, d.reason || ''));
}

function airtimeRow(a) {
  return h('tr', null,
    h('th', { scope: 'row' }, a.link),
    h('td', null, `${fmtInt(a.block_size)} B`),
    h('td', null, fmtDuration(nsToSeconds(a.per_device))),
    h('td', null, fmtDuration(nsToSeconds(a.total))),
    h('td', null, fmtDuration(nsToSeconds(a.full_only))));
}

function planView(plan) {
  return [
    h('h3', null, 'Plan'),
    planSummary(plan),
    h('h4', null, 'Devices'),
    tableWrap(dataTable({ id: 'campaign-plan-devices' }, 'Planned devices',
      ['Endpoint', 'Wave', 'Installed', 'Payload', 'Size', 'Full size', 'Reason'],
      plan.devices.map(planDeviceRow)), 'Planned devices'),
    h('h4', null, 'Airtime per link'),
    plan.airtime?.length
      ? tableWrap(dataTable({ id: 'campaign-plan-airtime' }, 'Estimated airtime per link',
        ['Link', 'Block size', 'Per device', 'Total', 'Full images only'], plan.airtime.map(airtimeRow)),
      'Estimated airtime per link')
      : h('p', { class: 'muted' }, 'No link profiles configured.'),
  ];
}

function campaignForm(scope) {
  const input = (id, attrs = {}) => h('input', { id, type: 'text', autocomplete: 'off', ...attrs });
  const el = {
    name: input('campaign-name'),
    image: h('select', { id: 'campaign-image', required: true }, h('option', { value: '' }, 'Loading images…')),
    all: h('input', { id: 'campaign-select-all', type: 'checkbox', checked: true }),
    cls: input('campaign-class', { list: 'campaign-classes' }),
    version: input('campaign-version', { placeholder: '1.0.0, 1.1.0' }),
    endpoints: input('campaign-endpoints', { placeholder: 'dev-1, dev-2' }),
    tags: input('campaign-tags', { placeholder: 'site=berlin, cell' }),
    waves: input('campaign-waves', { placeholder: '1, 10%' }),
    soak: input('campaign-soak', { type: 'number', min: 0, step: 1, inputmode: 'numeric' }),
    maxConcurrent: input('campaign-max-concurrent', { type: 'number', min: 0, step: 1, inputmode: 'numeric' }),
    maxFailures: input('campaign-max-failures', { type: 'number', min: 0, step: 1, inputmode: 'numeric' }),
    retries: input('campaign-retries', { type: 'number', step: 1, inputmode: 'numeric' }),
    full: h('input', { id: 'campaign-full', type: 'checkbox' }),
  };
  const classes = h('datalist', { id: 'campaign-classes' });
  const planBtn = h('button', { id: 'campaign-plan', type: 'submit' }, 'Plan (dry run)');
  const createBtn = h('button', { id: 'campaign-create', type: 'button', disabled: true }, 'Create campaign');
  const error = h('p', { id: 'campaign-form-error', class: 'form-error', 'aria-live': 'assertive' });
  const result = h('div', { id: 'campaign-plan-result', 'aria-live': 'polite' });

  const spec = () => {
    const s = { image: el.image.value, select: {} };
    if (el.name.value.trim()) s.name = el.name.value.trim();
    if (el.all.checked) s.select.all = true;
    if (el.cls.value.trim()) s.select.class = el.cls.value.trim();
    if (list(el.version.value).length) s.select.versions = list(el.version.value);
    if (list(el.endpoints.value).length) s.select.endpoints = list(el.endpoints.value);
    const tags = parseTags(el.tags.value);
    if (Object.keys(tags).length) s.select.tags = tags;
    const waves = parseWaves(el.waves.value, intOf(el.soak));
    if (waves.length) s.waves = waves;
    if (intOf(el.maxConcurrent)) s.limits = { max_concurrent: intOf(el.maxConcurrent) };
    const failure = {};
    if (intOf(el.maxFailures)) failure.max_failures = intOf(el.maxFailures);
    if (intOf(el.retries)) failure.retries = intOf(el.retries);
    if (Object.keys(failure).length) s.failure = failure;
    if (el.full.checked) s.delivery = { full: true };
    return s;
  };

  // planned is the spec the plan shown was made for: Create sends exactly
  // it, and any change to the form asks for a new plan first.
  let planned = null;
  const form = h('form', { id: 'campaign-form', class: 'grid-form' },
    field('Name', el.name),
    field('Image', el.image),
    h('fieldset', null, h('legend', null, 'Devices'),
      checkField('All provisioned devices, narrowed by the criteria below', el.all),
      field('Class', el.cls, 'Default: the image’s class.'),
      field('Installed versions', el.version, 'Comma-separated.'),
      field('Endpoints', el.endpoints, 'Comma-separated; the rollout follows their order.'),
      field('Tags', el.tags, 'k=v, k2=v2; a bare name matches any value.')),
    h('fieldset', null, h('legend', null, 'Rollout'),
      field('Waves', el.waves, 'Counts or percentages, e.g. 1, 10%; the rest forms the last wave.'),
      field('Soak between waves (seconds)', el.soak),
      field('Max concurrent updates', el.maxConcurrent, 'Empty or 0: no limit.'),
      field('Max failures per wave', el.maxFailures, 'Pauses the campaign beyond it; empty: never.'),
      field('Download retries per device', el.retries, 'Empty: the server’s default; negative: never.'),
      checkField('Full images only (no deltas)', el.full)),
    h('div', { class: 'buttons' }, planBtn, createBtn),
    error,
    classes);

  const invalidate = () => {
    if (!planned) return;
    planned = null;
    createBtn.disabled = true;
    result.prepend(h('p', { class: 'stale' }, 'The form changed: plan again before creating.'));
  };
  form.addEventListener('input', invalidate);
  form.addEventListener('change', invalidate);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    let s;
    try {
      s = spec();
    } catch (err) {
      error.textContent = messageOf(err);
      return;
    }
    planBtn.disabled = true;
    result.replaceChildren(h('p', { class: 'muted' }, 'Planning…'));
    try {
      const plan = await api('/api/v1/campaigns/plan', { method: 'POST', json: s, signal: scope.signal });
      result.replaceChildren(...planView(plan));
      planned = s;
      createBtn.disabled = false;
    } catch (err) {
      result.replaceChildren();
      error.textContent = messageOf(err);
    } finally {
      planBtn.disabled = false;
    }
  });

  createBtn.addEventListener('click', async () => {
    if (!planned) return;
    error.textContent = '';
    createBtn.disabled = true;
    try {
      const body = await api('/api/v1/campaigns', { method: 'POST', json: planned, signal: scope.signal });
      location.hash = campaignHref(body.campaign.id);
    } catch (err) {
      error.textContent = messageOf(err);
      createBtn.disabled = !planned;
    }
  });

  const load = async () => {
    const [{ images }, cls] = await Promise.all([
      api('/api/v1/images', { signal: scope.signal }),
      api('/api/v1/classes', { signal: scope.signal }).then((b) => b.classes, () => []),
    ]);
    el.image.replaceChildren(...(images.length ? imageOptions(images) : [h('option', { value: '' }, 'No images stored')]));
    const names = new Set([...cls.map((c) => c.name), ...images.map((i) => i.class)]);
    classes.replaceChildren(...[...names].sort().map((n) => h('option', { value: n })));
  };
  load().catch((err) => {
    if (err.name !== 'AbortError') error.textContent = `Loading images: ${messageOf(err)}`;
  });

  return h('div', null, form, result);
}

// ---- the list ----

function campaignRow(p) {
  return h('tr', { dataset: { id: p.id } },
    h('th', { scope: 'row' }, h('a', { href: campaignHref(p.id) }, p.name || p.id)),
    h('td', null, p.image || '—'),
    h('td', null, h('span', { class: `badge state-${p.state}` }, p.state)),
    h('td', null, p.total ? `${fmtPercent(ended(p.counts) / p.total)} (${ended(p.counts)} of ${p.total})` : '—'),
    h('td', null, timeEl(p.created)));
}

export function campaignsPage(scope) {
  scope.title('Campaigns');
  const tbody = h('tbody', null, emptyRow(5, 'Loading…'));
  const table = dataTable({ id: 'campaign-table' }, 'Campaigns', ['Name', 'Image', 'State', 'Progress', 'Created'], tbody);
  scope.poll(LIST_REFRESH_MS, async () => {
    const { campaigns } = await api('/api/v1/campaigns', { signal: scope.signal });
    campaigns.reverse(); // newest first
    tbody.replaceChildren(...(campaigns.length ? campaigns.map(campaignRow) : [emptyRow(5, 'No campaigns yet.')]));
  }, 'Loading campaigns');
  return h('section', null,
    h('h1', null, 'Campaigns'),
    h('section', { class: 'card', 'aria-labelledby': 'clist-h' },
      h('h2', { id: 'clist-h' }, 'All campaigns'), tableWrap(table, 'Campaigns')),
    h('section', { class: 'card', 'aria-labelledby': 'cnew-h' },
      h('h2', { id: 'cnew-h' }, 'New campaign'), campaignForm(scope)));
}

// ---- one campaign ----

function waveRow(w) {
  const done = ended(w.counts);
  return h('tr', { dataset: { wave: w.index } },
    h('th', { scope: 'row', class: 'nowrap' }, `Wave ${w.index}`),
    h('td', null, String(w.size)),
    h('td', null,
      h('progress', { class: 'wave-progress', dataset: { wave: w.index }, max: w.size || 1, value: done,
        'aria-label': `Wave ${w.index}: ${done} of ${w.size} ended` }),
      ` ${w.size ? fmtPercent(done / w.size) : '—'}`),
    h('td', null, countsText(w.counts)),
    h('td', null, timeEl(w.opened)),
    h('td', null, timeEl(w.settled)),
    h('td', null, w.soak_until ? timeEl(w.soak_until, true) : '—'));
}

function failureRow(f) {
  return h('tr', null,
    h('th', { scope: 'row' }, f.reason || f.result_text || '—'),
    h('td', null, `${f.result_text} (${f.result})`),
    h('td', null, String(f.count)),
    h('td', null, f.endpoints.flatMap((ep, i) => (i ? [', ', deviceLink(ep)] : [deviceLink(ep)])),
      f.count > f.endpoints.length ? ` and ${f.count - f.endpoints.length} more` : ''));
}

function targetRow(t) {
  return h('tr', { dataset: { endpoint: t.endpoint } },
    h('th', { scope: 'row' }, deviceLink(t.endpoint)),
    h('td', null, String(t.wave + 1)),
    h('td', null, h('span', { class: `badge tstate-${t.state}` }, t.state)),
    h('td', null, t.installed || '—'),
    h('td', null, t.format ? `${t.format}${t.fell_back ? ' (fell back)' : ''}` : '—'),
    h('td', { class: 'num' }, t.size ? fmtBytes(t.size) : '—'),
    h('td', { class: 'num' }, t.bytes_served ? fmtBytes(t.bytes_served) : '—'),
    h('td', null, t.reason || ''),
    h('td', null, timeEl(t.started)),
    h('td', null, timeEl(t.ended)));
}

function specPairs(c) {
  const s = c.spec;
  const sel = s.select || {};
  const criteria = [
    sel.all ? 'all devices' : null,
    sel.class ? `class ${sel.class}` : null,
    sel.versions?.length ? `versions ${sel.versions.join(', ')}` : null,
    sel.endpoints?.length ? `${sel.endpoints.length} named endpoints` : null,
    sel.tags ? `tags ${tagsText(sel.tags)}` : null,
  ].filter(Boolean).join('; ');
  const waves = (s.waves || []).map((w) => (w.count ? `${w.count}` : `${w.percent}%`) + (w.soak ? ` (soak ${w.soak})` : ''));
  const limits = s.limits?.max_concurrent ? `at most ${s.limits.max_concurrent} at once` : 'no concurrency limit';
  const failure = s.failure?.max_failures
    ? `pause when more than ${s.failure.max_failures} devices of a wave fail` : 'never pauses itself';
  return [
    ['Image', [c.version ? `${c.version} ` : '', shortDigest(s.image)]],
    ['Selection', criteria || '—'],
    ['Waves', waves.length ? `${waves.join(', ')}, then the rest` : 'one wave'],
    ['Limits', limits],
    ['Failure policy', failure + (s.failure?.retries ? `; ${s.failure.retries} retries` : '')],
    ['Delivery', s.delivery?.full ? 'full images only' : 'delta where possible'],
  ];
}

export function campaignPage(scope, id) {
  scope.title(`Campaign ${id}`);
  const url = `/api/v1/campaigns/${enc(id)}`;
  const title = h('h1', { id: 'campaign-title' }, `Campaign ${id}`);
  const state = h('span', { id: 'campaign-state', class: 'badge' });
  const reason = h('span', { id: 'campaign-reason', class: 'muted' });
  const times = h('div');
  const spec = h('div');
  const actionError = h('p', { id: 'campaign-action-error', class: 'form-error', 'aria-live': 'assertive' });
  const overall = h('progress', { id: 'campaign-progress', max: 1, value: 0 });
  const overallText = h('span', { id: 'campaign-progress-text', 'aria-live': 'polite' });
  const counts = h('p', { id: 'campaign-counts' });
  const bytes = h('p', { id: 'campaign-bytes' });
  const wavesBody = h('tbody');
  const wavesTable = dataTable({ id: 'campaign-waves-list' }, 'Waves',
    ['Wave', 'Devices', 'Progress', 'By state', 'Opened', 'Settled', 'Next wave'], wavesBody);
  const failures = h('div', { id: 'campaign-failures' });
  const targetsBody = h('tbody', null, emptyRow(10, 'Loading…'));
  const targetsTable = dataTable({ id: 'campaign-targets' }, 'Devices',
    ['Endpoint', 'Wave', 'State', 'Installed', 'Package', 'Size', 'Served', 'Reason', 'Started', 'Ended'], targetsBody);
  const targetsNote = h('p', { class: 'muted' });

  // action posts start, pause, resume or cancel.
  const action = (name) => async () => {
    actionError.textContent = '';
    try {
      render(await api(`${url}/${name}`, { method: 'POST', signal: scope.signal }));
      refreshTargets();
    } catch (err) {
      actionError.textContent = messageOf(err);
    }
  };
  const startBtn = h('button', { id: 'campaign-start', type: 'button', disabled: true, onclick: action('start') }, 'Start');
  const pauseBtn = h('button', { id: 'campaign-pause', type: 'button', class: 'secondary', disabled: true, onclick: action('pause') }, 'Pause');
  const resumeBtn = h('button', { id: 'campaign-resume', type: 'button', disabled: true, onclick: action('resume') }, 'Resume');
  const cancelBtn = confirmButton({ id: 'campaign-cancel', class: 'danger', disabled: true }, 'Cancel campaign', 'Confirm cancel',
    action('cancel'));

  let lastKey = '';
  let es = null;

  function render(p) {
    state.textContent = p.state;
    state.className = `badge state-${p.state}`;
    reason.textContent = p.reason ? ` ${p.reason}` : '';
    startBtn.disabled = p.state !== 'created';
    pauseBtn.disabled = p.state !== 'running';
    resumeBtn.disabled = p.state !== 'paused';
    const cancellable = ['created', 'running', 'paused'].includes(p.state);
    if (!cancellable) cancelBtn.disarm();
    cancelBtn.disabled = !cancellable;
    times.replaceChildren(dl([['Created', timeEl(p.created)], ['Started', timeEl(p.started)], ['Ended', timeEl(p.ended)]]));

    const done = ended(p.counts);
    overall.max = p.total || 1;
    overall.value = done;
    overallText.textContent = `${fmtInt(done)} of ${fmtInt(p.total)} devices ended (${fmtPercent(p.total ? done / p.total : 0)})` +
      (p.running ? ` · ${p.running} running now (peak ${p.peak_running})` : '');
    counts.textContent = `By state: ${countsText(p.counts)}`;
    const saved = p.bytes_baseline > 0 ? fmtPercent(p.bytes_saved / p.bytes_baseline) : '—';
    bytes.textContent = `Served ${fmtBytes(p.bytes_served, true)} against ${fmtBytes(p.bytes_baseline, true)} ` +
      `for full images to the devices updated so far: ${fmtBytes(p.bytes_saved)} saved (${saved}).`;
    wavesBody.replaceChildren(...(p.waves || []).map(waveRow));
    failures.replaceChildren(p.failures?.length
      ? tableWrap(dataTable({ class: 'failures' }, 'Failures by reason', ['Reason', 'Update result', 'Devices', 'Endpoints'],
        p.failures.map(failureRow)), 'Failures by reason')
      : h('p', { class: 'muted' }, 'No failures.'));
    if (['done', 'cancelled'].includes(p.state)) {
      es?.close();
      es = null;
    }
    // The device list comes only with the whole campaign: read it again
    // when the counts moved.
    const key = JSON.stringify([p.state, p.counts, p.bytes_served]);
    if (key !== lastKey) {
      lastKey = key;
      refreshTargets();
    }
  }

  let targetsDue = false;
  let targetsBusy = false;
  async function refreshTargets() {
    if (targetsBusy) {
      targetsDue = true;
      return;
    }
    targetsBusy = true;
    try {
      const { campaign: c } = await api(url, { signal: scope.signal });
      showCampaign(c);
    } catch (err) {
      if (err.name !== 'AbortError') actionError.textContent = `Reading the devices: ${messageOf(err)}`;
    }
    scope.after(TARGETS_REFRESH_MS, () => {
      targetsBusy = false;
      if (targetsDue) {
        targetsDue = false;
        refreshTargets();
      }
    });
  }

  function showCampaign(c) {
    const name = c.spec.name || `Campaign ${c.id}`;
    title.textContent = name;
    scope.title(name);
    spec.replaceChildren(dl(specPairs(c)));
    const targets = c.targets || [];
    targetsBody.replaceChildren(...(targets.length ? targets.slice(0, MAX_TARGET_ROWS).map(targetRow)
      : [emptyRow(10, 'No devices.')]));
    targetsNote.textContent = targets.length > MAX_TARGET_ROWS
      ? `Showing the first ${fmtInt(MAX_TARGET_ROWS)} of ${fmtInt(targets.length)} devices.` : '';
  }

  (async () => {
    try {
      const body = await api(url, { signal: scope.signal });
      showCampaign(body.campaign);
      lastKey = JSON.stringify([body.progress.state, body.progress.counts, body.progress.bytes_served]);
      render(body.progress);
      if (!['done', 'cancelled'].includes(body.progress.state)) {
        es = scope.stream(`${url}/events`, 'progress', render, {
          onFail: () => {
            actionError.textContent = 'Live progress is unavailable: reload the page to try again.';
          },
        });
      }
    } catch (err) {
      if (err.name !== 'AbortError') {
        title.textContent = err.status === 404 ? 'Campaign not found' : `Campaign ${id}`;
        actionError.textContent = messageOf(err);
      }
    }
  })();

  return h('section', null,
    h('p', { class: 'crumbs' }, h('a', { href: '#/campaigns' }, 'Campaigns'), ' / ', id),
    title,
    h('section', { class: 'card', 'aria-labelledby': 'cstate-h' },
      h('h2', { id: 'cstate-h' }, 'State'),
      h('p', { class: 'state-line' }, state, reason),
      h('div', { class: 'buttons' }, startBtn, pauseBtn, resumeBtn, cancelBtn),
      actionError,
      times),
    h('section', { class: 'card', 'aria-labelledby': 'cprog-h' },
      h('h2', { id: 'cprog-h' }, 'Progress'),
      h('div', { class: 'progress-line' }, h('label', { for: 'campaign-progress', class: 'vh' }, 'Campaign progress'), overall, overallText),
      counts,
      bytes,
      h('h3', null, 'Waves'),
      tableWrap(wavesTable, 'Waves'),
      h('h3', null, 'Failures by reason'),
      failures),
    h('section', { class: 'card', 'aria-labelledby': 'cspec-h' }, h('h2', { id: 'cspec-h' }, 'Spec'), spec),
    h('section', { class: 'card', 'aria-labelledby': 'ctargets-h' },
      h('h2', { id: 'ctargets-h' }, 'Devices'), targetsNote, tableWrap(targetsTable, 'Campaign devices')));
}
