// A device's objects and resources: read an instance, then write,
// execute and observe its resources; and a free path box for anything
// else. Operations go through POST /api/v1/devices/{ep}/ops, which waits
// for the device; for a sleeping device it answers 202 with a ticket, and
// the page waits on the ticket until the device has woken up.

import { ApiError, api, enc, readLines } from './api.js';
import { dataTable, fmtTimeText, h, messageOf, tableWrap } from './ui.js';

// Names of the registry's common objects, for headings only: the values
// carry their resources' names from fotad's object model.
const OBJECT_NAMES = {
  0: 'Security', 1: 'Server', 2: 'Access Control', 3: 'Device', 4: 'Connectivity Monitoring',
  5: 'Firmware Update', 6: 'Location', 7: 'Connectivity Statistics', 9: 'Software Management',
  10: 'Cellular Connectivity', 11: 'APN Connection Profile', 21: 'OSCORE',
};

// Executable resources have no value, so a Read never lists them; these
// are the ones of the core objects, offered beside the values read.
const EXECUTABLES = {
  1: { 4: 'Disable', 8: 'Registration Update Trigger', 9: 'Bootstrap-Request Trigger' },
  3: { 4: 'Reboot', 5: 'Factory Reset', 12: 'Reset Error Code' },
  5: { 2: 'Update' },
  9: { 4: 'Install', 6: 'Uninstall', 10: 'Activate', 11: 'Deactivate' },
};

const CODE_NAMES = { '2.01': 'Created', '2.02': 'Deleted', '2.04': 'Changed', '2.05': 'Content' };

const MAX_OBSERVE_LINES = 100;

// linkPaths are the paths of a registration's object links, "</3/0>;ver=1.1"
// giving "/3/0", without the root link.
function linkPaths(objects) {
  const paths = [];
  for (const link of objects || []) {
    const m = /^<([^>]*)>/.exec(link);
    if (m && m[1] !== '/' && m[1] !== '' && !paths.includes(m[1])) paths.push(m[1]);
  }
  return paths;
}

function objectId(path) {
  return Number(path.split('/')[1]);
}

function codeText(code) {
  return CODE_NAMES[code] ? `${code} ${CODE_NAMES[code]}` : code;
}

// valueText shows a resource value as text; opaque values are base64.
function valueText(v) {
  if (v.type === 'opaque') return `${v.value} (base64)`;
  return typeof v.value === 'string' ? v.value : JSON.stringify(v.value);
}

function valueLine(v) {
  const name = v.name ? ` ${v.name}` : '';
  return `${v.path}${name} = ${JSON.stringify(v.value)} (${v.type})`;
}

// errorText adds the device's CoAP code when the message does not name it.
function errorText(err) {
  const coap = err?.body?.coap_code;
  const msg = messageOf(err);
  return coap && !msg.includes(coap) ? `${msg} (CoAP ${coap})` : msg;
}

// makeOps binds the operations to one device.
function makeOps(scope, ep) {
  const base = `/api/v1/devices/${enc(ep)}`;

  // run sends an operation and returns its result, waiting on the ticket
  // of a queued one; onQueued reports that it waits.
  async function run(req, onQueued) {
    let res = await api(`${base}/ops`, { method: 'POST', json: req, signal: scope.signal });
    while (res?.ticket) {
      const t = res.ticket;
      if (t.state === 'done') return t.result;
      if (t.state === 'failed') throw new ApiError(502, t.error, { error: t.error, coap_code: t.coap_code });
      onQueued?.(t);
      res = await api(`/api/v1/tickets/${enc(t.id)}?wait=60s`, { signal: scope.signal });
    }
    return res;
  }

  // observe streams the path's values to onNote until signal aborts or
  // the server ends the stream.
  function observe(path, signal, onNote) {
    return readLines(`${base}/observe?path=${enc(path)}`, signal, onNote);
  }

  return { run, observe };
}

// observeToggle is a button that starts an observation and, labelled
// Stop meanwhile, stops it. It ends with the page too. what names the
// observed resource to screen readers when the row does not.
function observeToggle(scope, attrs, what, start, onEnd) {
  let ctl = null;
  const btn = h('button', { type: 'button', ...attrs });
  const set = (on) => {
    btn.dataset.observing = String(on);
    btn.textContent = on ? 'Stop' : 'Observe';
    if (what) btn.setAttribute('aria-label', on ? `Stop observing ${what}` : `Observe ${what}`);
  };
  set(false);
  btn.addEventListener('click', async () => {
    if (ctl) {
      ctl.abort();
      return;
    }
    const mine = new AbortController();
    ctl = mine;
    const stop = () => mine.abort();
    scope.signal.addEventListener('abort', stop, { once: true });
    set(true);
    let error = null;
    try {
      await start(mine.signal);
    } catch (err) {
      if (err.name !== 'AbortError') error = err;
    } finally {
      scope.signal.removeEventListener('abort', stop);
      ctl = null;
      if (!scope.closed) {
        set(false);
        onEnd(error, mine.signal.aborted);
      }
    }
  });
  return btn;
}

const pending = (text = 'working…') => h('span', { class: 'muted' }, text);

// allows reports whether the object model allows op ('R', 'W' or 'E') on
// the resource v ("R", "W", "RW", "E" or "none"); a resource the model does
// not know allows everything and the device has the last word.
function allows(v, op) {
  return !v.operations || v.operations.includes(op);
}

// resourceRow is one value with the write, execute and observe controls
// its object model allows.
function resourceRow(scope, ops, v) {
  const valueCell = h('td', { class: 'value' }, v.operations === 'E' ? h('span', { class: 'muted' }, '—') : valueText(v));
  const status = h('td', { class: 'status', 'aria-live': 'polite' });
  const path = v.path;
  const say = (text, isError) => status.replaceChildren(h('span', { class: isError ? 'error-text' : 'muted' }, text));
  const act = async (btn, req, done) => {
    btn.disabled = true;
    status.replaceChildren(pending());
    try {
      const res = await ops.run(req, (t) => say(`queued for the sleeping device (ticket ${t.id})…`));
      say(done(res));
    } catch (err) {
      if (err.name !== 'AbortError') say(errorText(err), true);
    } finally {
      btn.disabled = false;
    }
  };

  const label = `${path}${v.name ? ` ${v.name}` : ''}`;
  const input = h('input', { type: 'text', class: 'inline-input', 'aria-label': `New value for ${label}`, autocomplete: 'off' });
  const writeBtn = h('button', { type: 'submit', class: 'small' }, 'Write');
  const writeForm = h('form', { class: 'inline-form' }, input, writeBtn);
  writeForm.addEventListener('submit', (e) => {
    e.preventDefault();
    act(writeBtn, { op: 'write', path, value: input.value }, (res) => {
      valueCell.textContent = input.value;
      return `written: ${codeText(res.code)}`;
    });
  });
  const execBtn = h('button', { type: 'button', class: 'small secondary', 'aria-label': `Execute ${label}` }, 'Execute');
  execBtn.addEventListener('click', () => act(execBtn, { op: 'execute', path }, (res) => `executed: ${codeText(res.code)}`));
  const observeBtn = observeToggle(scope, { class: 'small secondary observe' }, label,
    (signal) => {
      say('observing…');
      return ops.observe(path, signal, (n) => {
        const val = n.values.find((x) => x.path === path) || n.values[0];
        if (val) valueCell.textContent = valueText(val);
        say(`updated ${fmtTimeText(n.received)}`);
      });
    },
    (err, stopped) => say(err ? errorText(err) : stopped ? 'observation stopped' : 'observation ended', !!err));

  return h('tr', { dataset: { path } },
    h('th', { scope: 'row' }, h('code', null, path), v.name ? h('div', { class: 'muted small' }, v.name) : null),
    valueCell,
    h('td', null, v.type),
    h('td', { class: 'actions' }, allows(v, 'W') ? writeForm : null, allows(v, 'E') ? execBtn : null,
      allows(v, 'R') ? observeBtn : null),
    status);
}

// instanceBlock is one object instance (or object) from the registration,
// with a Read button that fills its resource table.
function instanceBlock(scope, ops, path) {
  const id = objectId(path);
  const body = h('div', { class: 'instance-body' });
  const status = h('span', { class: 'status', 'aria-live': 'polite' });
  const readBtn = h('button', { type: 'button', class: 'small', 'aria-label': `Read ${path}` }, 'Read');
  readBtn.addEventListener('click', async () => {
    readBtn.disabled = true;
    status.replaceChildren(pending('reading…'));
    try {
      const res = await ops.run({ op: 'read', path },
        (t) => status.replaceChildren(pending(`queued for the sleeping device (ticket ${t.id})…`)));
      status.replaceChildren(h('span', { class: 'muted' }, `${codeText(res.code)} · ${res.values.length} values`));
      const known = new Set(res.values.map((v) => v.path));
      const execs = Object.entries(EXECUTABLES[id] || {})
        .map(([r, name]) => ({ path: `${path}/${r}`, name, type: 'executable', operations: 'E' }))
        .filter((v) => path.split('/').length === 3 && !known.has(v.path));
      body.replaceChildren(tableWrap(dataTable({ class: 'resources' }, `Resources of ${path}`,
        ['Resource', 'Value', 'Type', 'Actions', 'Status'],
        [...res.values, ...execs].map((v) => resourceRow(scope, ops, v))), `Resources of ${path}`));
    } catch (err) {
      if (err.name !== 'AbortError') status.replaceChildren(h('span', { class: 'error-text' }, errorText(err)));
    } finally {
      readBtn.disabled = false;
    }
  });
  const name = OBJECT_NAMES[id];
  return h('div', { class: 'instance', dataset: { path } },
    h('div', { class: 'instance-head' },
      h('h3', null, h('code', null, path), name ? ` ${name}` : ''),
      readBtn, status),
    body);
}

// genericBox runs an operation on any path typed in.
function genericBox(scope, ops) {
  const path = h('input', { id: 'op-path', type: 'text', placeholder: '/3/0/13', autocomplete: 'off', spellcheck: 'false' });
  const value = h('input', { id: 'op-value', type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const out = h('pre', { id: 'op-result', class: 'op-result', 'aria-live': 'polite' }, 'No operation yet.');
  const show = (text, isError = false) => {
    out.textContent = text;
    out.classList.toggle('is-error', isError);
  };
  const target = () => path.value.trim();

  const act = async (btn, req, describe) => {
    if (!req.path) {
      show('Give a path, e.g. /3/0 or /3/0/13.', true);
      path.focus();
      return;
    }
    btn.disabled = true;
    show(`${req.op} ${req.path}…`);
    try {
      const res = await ops.run(req, (t) => show(`${req.op} ${req.path}: queued for the sleeping device (ticket ${t.id}, ${t.state})…`));
      show(describe(res));
    } catch (err) {
      if (err.name !== 'AbortError') show(`${req.op} ${req.path} failed: ${errorText(err)}`, true);
    } finally {
      btn.disabled = false;
    }
  };

  const readBtn = h('button', { id: 'op-read', type: 'submit' }, 'Read');
  const writeBtn = h('button', { id: 'op-write', type: 'button', class: 'secondary' }, 'Write');
  const execBtn = h('button', { id: 'op-execute', type: 'button', class: 'secondary' }, 'Execute');
  const form = h('form', { class: 'op-form' },
    h('div', { class: 'field' }, h('label', { for: 'op-path' }, 'Path'), path),
    h('div', { class: 'field' }, h('label', { for: 'op-value' }, 'Value (for Write)'), value),
    h('div', { class: 'buttons' }, readBtn, writeBtn, execBtn));

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(readBtn, { op: 'read', path: target() }, (res) =>
      [`${codeText(res.code)}${res.format ? ` (${res.format})` : ''}`, ...res.values.map(valueLine)].join('\n'));
  });
  writeBtn.addEventListener('click', () => act(writeBtn, { op: 'write', path: target(), value: value.value },
    (res) => `wrote ${JSON.stringify(value.value)} to ${target()}: ${codeText(res.code)}`));
  execBtn.addEventListener('click', () => act(execBtn, { op: 'execute', path: target() },
    (res) => `executed ${target()}: ${codeText(res.code)}`));

  let lines = [];
  const observeBtn = observeToggle(scope, { id: 'op-observe', class: 'secondary' }, '',
    (signal) => {
      const p = target();
      if (!p) throw new Error('Give a path to observe, e.g. /3/0/13.');
      lines = [`observing ${p}: Stop ends it`];
      show(lines[0]);
      return ops.observe(p, signal, (n) => {
        const when = fmtTimeText(n.received);
        const tag = n.initial ? ' (initial)' : n.reestablished ? ' (re-established)' : '';
        lines.push(...n.values.map((v) => `${when}${tag} ${valueLine(v)}`));
        lines = lines.slice(-MAX_OBSERVE_LINES);
        show(lines.join('\n'));
      });
    },
    (err, stopped) => {
      const end = err ? `observation failed: ${errorText(err)}` : stopped ? 'observation stopped' : 'observation ended';
      show([...lines, end].join('\n'), !!err);
    });
  form.querySelector('.buttons').append(observeBtn);

  return h('div', { class: 'generic-ops' }, h('h3', null, 'Any path'), form, out);
}

// resourcesSection returns the section and update(device), which lists
// the device's objects again when its registration announced others.
export function resourcesSection(scope, ep) {
  const ops = makeOps(scope, ep);
  const list = h('div', { class: 'instances' }, pending('Loading…'));
  let shown = null;
  const update = (device) => {
    const paths = linkPaths(device.objects);
    const key = JSON.stringify(paths);
    if (key === shown) return; // keep the values read so far
    shown = key;
    list.replaceChildren(...(paths.length ? paths.map((p) => instanceBlock(scope, ops, p))
      : [h('p', { class: 'muted' }, device.registered
        ? 'The registration lists no objects.' : 'Not registered: the device announces its objects when it registers.')]));
  };
  const node = h('section', { class: 'card', 'aria-labelledby': 'objects-h' },
    h('h2', { id: 'objects-h' }, 'Objects and resources'), list, genericBox(scope, ops));
  return { node, update };
}
