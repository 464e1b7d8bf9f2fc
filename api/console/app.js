// The console's shell: sign-in, the hash router, and the scope each page
// lives in, which closes its streams, timers and requests when the user
// leaves it.

import { api, eventStream, getSession, onUnauthorized, setCsrf } from './api.js';
import { clearError, h, messageOf, showError } from './ui.js';
import { fleetPage } from './fleet.js';
import { devicePage } from './device.js';
import { imagesPage } from './images.js';
import { campaignPage, campaignsPage } from './campaigns.js';
import { eventsPage } from './events.js';

const $ = (id) => document.getElementById(id);

// Scope is what a page owns: aborting its signal cancels its requests and
// observe streams; close also runs whatever it deferred (closing event
// streams, clearing timers).
class Scope {
  #ctl = new AbortController();
  #cleanups = [];

  get signal() {
    return this.#ctl.signal;
  }

  get closed() {
    return this.#ctl.signal.aborted;
  }

  defer(fn) {
    if (this.closed) fn();
    else this.#cleanups.push(fn);
  }

  // poll runs fn now and then ms after each run has finished, so that a
  // slow answer never overlaps the next request.
  poll(ms, fn, context) {
    let timer = 0;
    const run = async () => {
      try {
        await fn();
      } catch (err) {
        showError(err, context);
      }
      if (!this.closed) timer = setTimeout(run, ms);
    };
    this.defer(() => clearTimeout(timer));
    run();
  }

  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    this.defer(() => clearTimeout(timer));
  }

  // stream opens an event stream that closes with the scope.
  stream(url, name, onData, opts) {
    const es = eventStream(url, name, onData, opts);
    this.defer(() => es.close());
    return es;
  }

  title(text) {
    document.title = `${text} · fotad console`;
  }

  close() {
    this.#ctl.abort();
    for (const fn of this.#cleanups.splice(0)) fn();
  }
}

// withParam binds a page to the route's decoded parameter; decoding here
// lets resolve catch a malformed %-escape.
const withParam = (page) => (m) => {
  const param = decodeURIComponent(m[1]);
  return (scope) => page(scope, param);
};

// Each route: the hash, the navigation link it belongs to, and the page.
const routes = [
  [/^#\/fleet$/, 'fleet', () => fleetPage],
  [/^#\/device\/(.+)$/, 'fleet', withParam(devicePage)],
  [/^#\/images$/, 'images', () => imagesPage],
  [/^#\/campaigns$/, 'campaigns', () => campaignsPage],
  [/^#\/campaign\/(.+)$/, 'campaigns', withParam(campaignPage)],
  [/^#\/events$/, 'events', () => eventsPage],
];

function notFound(scope) {
  scope.title('Not found');
  return h('section', null,
    h('h1', null, 'Page not found'),
    h('p', null, 'There is no page at this address. ', h('a', { href: '#/fleet' }, 'Go to the fleet'), '.'));
}

function resolve(hash) {
  for (const [re, nav, page] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    try {
      return { nav, page: page(m) };
    } catch {
      return { nav: '', page: notFound }; // a malformed %-escape
    }
  }
  return { nav: '', page: notFound };
}

let current = null; // the Scope of the page shown
let signedIn = false;
let expiryTimer = 0;

function closePage() {
  current?.close();
  current = null;
}

function route(moveFocus) {
  if (!signedIn) return;
  if (!location.hash || location.hash === '#' || location.hash === '#/') {
    history.replaceState(null, '', '#/fleet');
  }
  closePage();
  clearError();
  const { nav, page } = resolve(location.hash);
  const scope = new Scope();
  current = scope;
  const view = $('view');
  try {
    view.replaceChildren(page(scope));
  } catch (err) {
    view.replaceChildren(h('h1', null, 'Error'));
    showError(err);
  }
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // A new page is announced by moving focus to its heading, as a page
  // load would; not on the first load, where the browser starts at the top.
  if (moveFocus) {
    const h1 = view.querySelector('h1');
    if (h1) {
      h1.tabIndex = -1;
      h1.focus();
    }
  }
}

// ---- signing in and out ----

function show(signedInView) {
  $('boot').hidden = true;
  $('topbar').hidden = !signedInView;
  $('view').hidden = !signedInView;
  $('signin-view').hidden = signedInView;
}

// watchExpiry checks the session when it is due to expire, so that a page
// that only listens to streams still notices and shows the sign-in view.
function watchExpiry(expires) {
  clearTimeout(expiryTimer);
  const ms = Date.parse(expires) - Date.now();
  if (!Number.isFinite(ms)) return;
  expiryTimer = setTimeout(async () => {
    try {
      const s = await getSession();
      if (s) enter(s);
      else signedOut('Your session has ended: sign in again.');
    } catch (err) {
      showError(err, 'Checking the session');
    }
  }, Math.min(Math.max(ms, 0) + 1000, 2 ** 31 - 1));
}

function enter(session) {
  setCsrf(session.csrf);
  watchExpiry(session.expires);
  if (signedIn) return;
  signedIn = true;
  show(true);
  route(false);
}

// signedOut shows the sign-in view, with message when there is one to
// give, and keeps the hash, so that signing in again lands on the same
// page.
function signedOut(message = '') {
  signedIn = false;
  clearTimeout(expiryTimer);
  setCsrf('');
  closePage();
  $('view').replaceChildren();
  clearError();
  show(false);
  document.title = 'Sign in · fotad console';
  $('signin-error').textContent = message;
  $('signin-token').focus();
}

async function signIn(e) {
  e.preventDefault();
  const input = $('signin-token');
  const button = $('signin-submit');
  const err = $('signin-error');
  button.disabled = true;
  err.textContent = '';
  try {
    const session = await api('/console/session', { method: 'POST', json: { token: input.value }, auth: false });
    input.value = '';
    enter(session);
  } catch (ex) {
    err.textContent = messageOf(ex);
    input.select();
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try {
    await api('/console/session', { method: 'DELETE' });
    signedOut('Signed out.');
  } catch (err) {
    showError(err, 'Signing out');
  }
}

// ---- start ----

function globalErrors() {
  window.addEventListener('error', (e) => showError(e.error || e.message, 'Unexpected error'));
  window.addEventListener('unhandledrejection', (e) => showError(e.reason, 'Unexpected error'));
}

async function boot() {
  globalErrors();
  // Several requests in flight may all answer 401: the first one signs out.
  onUnauthorized(() => {
    if (signedIn) signedOut('Your session has ended: sign in again.');
  });
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  // The skip link must not change the hash, which is the router's.
  $('skip').addEventListener('click', (e) => {
    e.preventDefault();
    $('main').focus();
  });
  window.addEventListener('hashchange', () => route(true));
  try {
    const session = await getSession();
    if (session) enter(session);
    else signedOut();
  } catch (err) {
    $('boot').textContent = 'fotad did not answer. Reload the page to try again.';
    showError(err, 'Checking the session');
  }
}

boot();
