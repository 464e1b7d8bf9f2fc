// Talking to fotad: JSON requests, the upload, and the two kinds of
// stream (Server-Sent Events and NDJSON). The session lives in an
// HttpOnly cookie the browser sends by itself; what the page must add is
// the CSRF token on every request that changes something.

let csrf = '';
let unauthorized = () => {};

export function setCsrf(token) {
  csrf = token || '';
}

// onUnauthorized registers what a 401 does: show the sign-in view.
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

const SAFE = new Set(['GET', 'HEAD']);

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (a proxy's page): the status line is all there is
  }
  const msg = body?.error || `${res.status} ${res.statusText || 'error'}`;
  return new ApiError(res.status, msg, body);
}

function request(path, method, json, signal) {
  const headers = { Accept: 'application/json' };
  if (!SAFE.has(method) && csrf) headers['X-CSRF-Token'] = csrf;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  return fetch(path, { method, headers, body, signal, credentials: 'same-origin', cache: 'no-store' });
}

// api sends a request and returns the parsed JSON answer (null for 204).
// It throws an ApiError with the server's message for any error status;
// a 401 also signs the page out, unless auth is false (the sign-in call).
// A 403 on a change is retried once with a fresh CSRF token, for when a
// sign-in in another tab replaced the session this page had.
export async function api(path, { method = 'GET', json, signal, auth = true } = {}) {
  let res = await request(path, method, json, signal);
  if (res.status === 403 && !SAFE.has(method) && auth && await refreshCsrf(signal)) {
    res = await request(path, method, json, signal);
  }
  if (res.status === 401 && auth) unauthorized();
  if (!res.ok) throw await errorOf(res);
  return res.status === 204 ? null : res.json();
}

// getSession returns the session ({csrf, expires}), or null when signed
// out.
export async function getSession(signal) {
  try {
    return await api('/console/session', { signal, auth: false });
  } catch (err) {
    if (err.status === 401) return null;
    throw err;
  }
}

async function refreshCsrf(signal) {
  const s = await getSession(signal).catch(() => null);
  if (!s || s.csrf === csrf) return false;
  csrf = s.csrf;
  return true;
}

// upload POSTs a file's bytes with XMLHttpRequest, which, unlike fetch,
// reports upload progress: onProgress(loaded, total). It resolves to the
// status and the parsed answer.
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('X-CSRF-Token', csrf);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // leave body null
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ status: xhr.status, body });
        return;
      }
      if (xhr.status === 401) unauthorized();
      reject(new ApiError(xhr.status, body?.error || `${xhr.status} ${xhr.statusText}`, body));
    });
    xhr.addEventListener('error', () => reject(new Error('upload failed: the connection broke')));
    xhr.send(file);
  });
}

// eventStream opens a Server-Sent Events stream and calls onData with the
// parsed data of every event named name. EventSource reconnects by itself
// after a dropped connection; it gives up (readyState CLOSED) only when an
// answer is not a 200 event stream, and does not say which status it was:
// the session is checked to tell a 401 (sign in again) from the rest
// (onFail). onState reports 'open' and 'reconnecting'.
export function eventStream(url, name, onData, { onFail, onState } = {}) {
  const es = new EventSource(url);
  es.addEventListener(name, (e) => onData(JSON.parse(e.data), e));
  es.addEventListener('open', () => onState?.('open'));
  es.addEventListener('error', async () => {
    if (es.readyState !== EventSource.CLOSED) {
      onState?.('reconnecting');
      return;
    }
    onState?.('closed');
    let session;
    try {
      session = await getSession();
    } catch {
      // fotad unreachable: treat as a failed stream
    }
    if (session === null) unauthorized();
    else onFail?.();
  });
  return es;
}

// readLines reads an NDJSON answer and calls onValue with each line's
// value until the stream ends or signal aborts it.
export async function readLines(path, signal, onValue) {
  const res = await fetch(path, { signal, headers: { Accept: 'application/x-ndjson' }, cache: 'no-store' });
  if (res.status === 401) unauthorized();
  if (!res.ok) throw await errorOf(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) onValue(JSON.parse(line));
    }
  }
}

// enc encodes one path segment (an endpoint, an id).
export const enc = encodeURIComponent;
