// Events: fotad's log of what happens to devices and campaigns, live.
// The stream replays recent events, then sends new ones; EventSource
// reconnects by itself and sends the last id back, so nothing is lost or
// repeated across a dropped connection.

import { deviceLink, fmtTimeText, h } from './ui.js';

const MAX_ENTRIES = 500;
const FILTER_DELAY_MS = 400; // reconnect once typing pauses

function fieldText(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function entry(ev) {
  const fields = Object.entries(ev.fields || {});
  return h('li', { class: `event level-${ev.level}`, dataset: { seq: ev.seq } },
    h('time', { datetime: new Date(ev.time).toISOString() }, fmtTimeText(ev.time)),
    ' ',
    h('span', { class: `badge level-${ev.level}` }, ev.level),
    ev.endpoint ? [' ', deviceLink(ev.endpoint)] : null,
    ev.campaign ? [' ', h('a', { href: `#/campaign/${encodeURIComponent(ev.campaign)}` }, `campaign ${ev.campaign}`)] : null,
    ' ',
    h('span', { class: 'message' }, ev.message),
    fields.length ? h('span', { class: 'fields' },
      fields.map(([k, v]) => [' ', h('code', null, `${k}=${fieldText(v)}`)])) : null);
}

export function eventsPage(scope) {
  scope.title('Events');
  const filter = h('input', { id: 'events-endpoint', type: 'search', autocomplete: 'off', placeholder: 'all devices' });
  const pause = h('button', { id: 'events-pause', type: 'button', class: 'secondary' }, 'Pause');
  const clear = h('button', { id: 'events-clear', type: 'button', class: 'secondary' }, 'Clear');
  const status = h('p', { id: 'events-status', class: 'status', 'aria-live': 'polite' }, 'Connecting…');
  const listEl = h('ol', { id: 'events-list', class: 'events' });

  let es = null;
  let paused = false;
  let held = []; // events received while paused, oldest first
  let lastSeq = -1;

  const add = (items) => {
    // Newest at the top: insert in arrival order, each before the last.
    for (const ev of items) listEl.prepend(entry(ev));
    while (listEl.children.length > MAX_ENTRIES) listEl.lastElementChild.remove();
  };

  const receive = (ev) => {
    if (ev.seq <= lastSeq) return; // a replay of what is shown
    lastSeq = ev.seq;
    if (paused) {
      held.push(ev);
      held = held.slice(-MAX_ENTRIES);
      status.textContent = `Paused · ${held.length} new ${held.length === 1 ? 'event' : 'events'} held`;
    } else {
      add([ev]);
    }
  };

  const connect = () => {
    es?.close();
    listEl.replaceChildren();
    held = [];
    lastSeq = -1;
    const ep = filter.value.trim();
    const url = ep ? `/api/v1/events?endpoint=${encodeURIComponent(ep)}` : '/api/v1/events';
    status.textContent = 'Connecting…';
    es = scope.stream(url, 'log', receive, {
      onState: (s) => {
        if (paused) return;
        status.textContent = s === 'open' ? `Live${ep ? ` · ${ep}` : ''}` : s === 'reconnecting' ? 'Reconnecting…' : 'Disconnected';
      },
      onFail: () => {
        status.textContent = 'Disconnected: the event stream is unavailable. Change the filter or reload to try again.';
      },
    });
  };

  let timer = 0;
  filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(connect, FILTER_DELAY_MS);
  });
  scope.defer(() => clearTimeout(timer));

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (paused) {
      status.textContent = 'Paused';
    } else {
      add(held);
      held = [];
      status.textContent = 'Live';
    }
  });
  clear.addEventListener('click', () => {
    listEl.replaceChildren();
    held = [];
  });

  connect();
  return h('section', null,
    h('h1', null, 'Events'),
    h('div', { class: 'filters' },
      h('div', { class: 'field' }, h('label', { for: 'events-endpoint' }, 'Endpoint'), filter),
      h('div', { class: 'buttons' }, pause, clear)),
    status,
    listEl);
}
