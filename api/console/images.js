// Images: upload firmware images, list them, see what deltas to them
// would cost the fleet, and delete them.

import { api, enc, upload } from './api.js';
import {
  compareVersions, confirmButton, dataTable, emptyRow, field, fmtBytes, fmtPercent, h, messageOf, shortDigest,
  tableWrap, timeEl,
} from './ui.js';

const COLUMNS = ['Version', 'Class', 'Format', 'Size', 'Digest', 'Added', 'Actions'];

function deltaRow(r) {
  const saving = r.delta_size > 0 && r.full_size > 0 ? fmtPercent(1 - r.delta_size / r.full_size) : '—';
  return h('tr', null,
    h('td', null, r.from_version || h('span', { class: 'muted' }, 'unknown'),
      r.from_image ? h('div', { class: 'small' }, shortDigest(r.from_image)) : null),
    h('td', null, String(r.devices)),
    h('td', { class: 'num' }, r.delta_size > 0 ? fmtBytes(r.delta_size, true) : '—'),
    h('td', { class: 'num' }, r.full_size > 0 ? fmtBytes(r.full_size, true) : '—'),
    h('td', { class: 'num' }, saving),
    h('td', null, r.reason || ''));
}

// deltasTable shows what bringing each installed version to the image
// costs.
function deltasTable(list) {
  const rows = list.deltas.length ? list.deltas.map(deltaRow)
    : [emptyRow(6, `No device of class ${list.class} to update to ${list.version}.`)];
  return tableWrap(dataTable({ class: 'deltas' }, `Delta sizes to ${list.version}`,
    ['From version', 'Devices', 'Delta size', 'Full size', 'Saving', 'Reason'], rows), `Delta sizes to ${list.version}`);
}

// imageRows is the image's row and, below it, a row that holds its delta
// sizes once asked for: computing them can take a while, so they are
// fetched only on demand and kept.
function imageRows(scope, img, onDeleted, onError) {
  const holder = h('td', { colspan: COLUMNS.length });
  const detailsId = `deltas-${img.digest}`;
  const details = h('tr', { class: 'deltas-row', id: detailsId, hidden: true }, holder);
  let loaded = false;
  const deltasBtn = h('button', {
    type: 'button', class: 'small secondary image-deltas', 'aria-expanded': 'false', 'aria-controls': detailsId,
  }, 'Delta sizes');
  deltasBtn.addEventListener('click', async () => {
    const open = details.hidden;
    details.hidden = !open;
    deltasBtn.setAttribute('aria-expanded', String(open));
    if (!open || loaded) return;
    loaded = true;
    holder.replaceChildren(h('p', { class: 'muted', 'aria-live': 'polite' }, 'computing…'));
    try {
      holder.replaceChildren(deltasTable(await api(`/api/v1/images/${enc(img.digest)}/deltas`, { signal: scope.signal })));
    } catch (err) {
      loaded = false; // try again on the next click
      if (err.name !== 'AbortError') holder.replaceChildren(h('p', { class: 'form-error' }, messageOf(err)));
    }
  });
  const del = confirmButton({ class: 'small danger image-delete', 'aria-label': `Delete ${img.version} (${img.class})` },
    'Delete', 'Confirm delete', async () => {
      del.disabled = true;
      try {
        await api(`/api/v1/images/${enc(img.digest)}`, { method: 'DELETE', signal: scope.signal });
        onDeleted(img);
      } catch (err) {
        del.disabled = false;
        onError(err);
      }
    });
  const row = h('tr', { dataset: { digest: img.digest } },
    h('th', { scope: 'row' }, img.version),
    h('td', null, img.class),
    h('td', null, img.format),
    h('td', { class: 'num' }, fmtBytes(img.size, true)),
    h('td', { class: 'num' }, shortDigest(img.digest)),
    h('td', null, timeEl(img.added)),
    h('td', { class: 'actions' }, deltasBtn, del));
  return [row, details];
}

// uploadForm sends a file with its version, class and format.
function uploadForm(scope, onStored) {
  const file = h('input', { id: 'image-file', type: 'file', required: true });
  const version = h('input', { id: 'image-version', type: 'text', required: true, autocomplete: 'off', placeholder: '2.0.0' });
  const classList = h('datalist', { id: 'image-classes' });
  const cls = h('input', { id: 'image-class', type: 'text', required: true, list: 'image-classes', autocomplete: 'off', placeholder: 'meter' });
  const format = h('select', { id: 'image-format' },
    h('option', { value: 'native' }, 'native (fotad packages, deltas)'),
    h('option', { value: 'raw' }, 'raw (sent as uploaded)'));
  const submit = h('button', { id: 'image-upload', type: 'submit' }, 'Upload');
  const progress = h('progress', { id: 'image-upload-progress', max: 1, value: 0, hidden: true });
  const status = h('p', { id: 'image-status', class: 'status', 'aria-live': 'polite' });
  const form = h('form', { id: 'image-form', class: 'grid-form' },
    field('Image file', file),
    field('Version', version),
    field('Device class', cls, 'Pick a known class or name a new one.'),
    field('Format', format, 'A declared class fixes it.'),
    h('div', { class: 'buttons' }, submit),
    h('div', { class: 'progress-line' }, h('label', { for: 'image-upload-progress', class: 'vh' }, 'Upload progress'), progress),
    status);

  // A declared class has one profile: choosing it picks the format.
  let profiles = new Map();
  cls.addEventListener('input', () => {
    const p = profiles.get(cls.value.trim());
    if (p) format.value = p;
  });

  const say = (text, isError = false) => {
    status.textContent = text;
    status.classList.toggle('form-error', isError);
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) {
      say('Choose a file.', true);
      return;
    }
    const q = new URLSearchParams({ version: version.value.trim(), class: cls.value.trim(), format: format.value });
    submit.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    say(`Uploading ${f.name}…`);
    try {
      const { status: code, body: img } = await upload(`/api/v1/images?${q}`, f, (loaded, total) => {
        progress.value = loaded / total;
        say(`Uploading ${f.name}: ${fmtBytes(loaded)} of ${fmtBytes(total)}`);
      });
      form.reset();
      // 200 rather than 201: the same bytes, version and class were there.
      say(`${code === 201 ? 'Stored' : 'Already stored:'} ${img.version} (${img.class}, ${img.format}, ${fmtBytes(img.size, true)}).`);
      onStored();
    } catch (err) {
      say(messageOf(err), true);
    } finally {
      submit.disabled = false;
      progress.hidden = true;
    }
  });

  const setClasses = (classes, images) => {
    profiles = new Map(classes.map((c) => [c.name, c.profile]));
    const names = new Set([...profiles.keys(), ...images.map((i) => i.class)]);
    classList.replaceChildren(...[...names].sort().map((n) => h('option', { value: n })));
  };
  return { node: h('div', null, form, classList), setClasses };
}

export function imagesPage(scope) {
  scope.title('Images');
  const tbody = h('tbody', null, emptyRow(COLUMNS.length, 'Loading…'));
  const table = dataTable({ id: 'image-table' }, 'Firmware images', COLUMNS, tbody);
  const count = h('p', { class: 'count' });

  const load = async () => {
    const [{ images }, classes] = await Promise.all([
      api('/api/v1/images', { signal: scope.signal }),
      api('/api/v1/classes', { signal: scope.signal }).then((b) => b.classes, () => []),
    ]);
    images.sort((a, b) => a.class.localeCompare(b.class) || compareVersions(b.version, a.version));
    count.textContent = `${images.length} ${images.length === 1 ? 'image' : 'images'}`;
    tbody.replaceChildren(...(images.length
      ? images.flatMap((img) => imageRows(scope, img, reload, (err) => showInline(err)))
      : [emptyRow(COLUMNS.length, 'No images yet: upload one above.')]));
    form.setClasses(classes, images);
  };
  const listError = h('p', { class: 'form-error', 'aria-live': 'assertive' });
  const showInline = (err) => {
    listError.textContent = messageOf(err);
  };
  const reload = () => {
    listError.textContent = '';
    load().catch((err) => {
      if (err.name !== 'AbortError') showInline(err);
    });
  };
  const form = uploadForm(scope, reload);
  reload();

  return h('section', null,
    h('h1', null, 'Images'),
    h('section', { class: 'card', 'aria-labelledby': 'upload-h' }, h('h2', { id: 'upload-h' }, 'Upload an image'), form.node),
    h('section', { class: 'card', 'aria-labelledby': 'list-h' },
      h('h2', { id: 'list-h' }, 'Stored images'), count, listError, tableWrap(table, 'Firmware images')));
}
