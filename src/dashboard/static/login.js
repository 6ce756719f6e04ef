// The login page: takes the one-time token out of the address bar before anything else (so it
// stays out of the history and never reaches a Referer), trades it for the session cookie and
// goes on to the dashboard.

/* global URLSearchParams */

const status = document.getElementById('login-status');
const token = new URLSearchParams(location.search).get('t');
history.replaceState(null, '', '/login');

async function login() {
  if (!token) {
    // Already logged in (a bookmark of /login)? Then straight to the dashboard.
    const probe = await fetch('/api/units', { credentials: 'same-origin' }).catch(() => undefined);
    if (probe && probe.ok) return location.replace('/');
    status.textContent = 'This address has no login token.';
    return;
  }
  let res;
  try {
    res = await fetch('/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
  } catch (err) {
    status.textContent = `The supervisor did not answer: ${err instanceof Error ? err.message : String(err)}`;
    return;
  }
  if (res.ok) return location.replace('/');
  const body = await res.json().catch(() => ({}));
  status.textContent = `Login failed: ${typeof body.error === 'string' ? body.error : `HTTP ${res.status}`}`;
}

void login();
