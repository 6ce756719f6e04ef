// http: ready when the URL answers with an acceptable status. Redirects are NOT followed: a login
// page that redirects (302) proves the server is up, and following it could leave the host.
// The body is always read to a short excerpt or cancelled, and the connection is not kept alive,
// so nothing outlives the attempt.

import type { HttpProbe } from '../config/types.ts';
import { redactText, redactUrl } from '../util/redact.ts';
import { abortReason, failure } from './abort.ts';
import { describeNetError } from './errors.ts';
import type { Probe, ProbeContext, ProbeResult } from './types.ts';

const EXCERPT_CHARS = 200;

export function createHttpProbe(spec: HttpProbe, ctx: ProbeContext): Probe {
  let url: URL;
  try {
    url = new URL(spec.http);
  } catch {
    throw new Error(`unit "${ctx.unit}": healthcheck http "${redactUrl(spec.http)}" is not a URL (write it like http://127.0.0.1:18001/admin/login/)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`unit "${ctx.unit}": healthcheck http "${redactUrl(spec.http)}" must start with http:// or https://`);
  }
  const method = (spec.method ?? 'GET').toUpperCase();
  // A fresh connection per attempt: it proves the server still accepts connections (a pooled
  // keep-alive socket would not), it cannot go stale across a server restart, and no idle
  // socket outlives the attempt.
  const userSetConnection = Object.keys(spec.headers ?? {}).some((k) => k.toLowerCase() === 'connection');
  const headers: Record<string, string> = { ...(userSetConnection ? {} : { connection: 'close' }), ...spec.headers };
  const secrets: string[] = [];
  // fetch refuses URLs with credentials; send them the way a browser would, as Basic auth.
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    if (pass) secrets.push(pass);
    headers.authorization ??= `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  for (const [k, v] of Object.entries(headers)) if (/^(authorization|cookie|x-api-key)$/i.test(k) || /token|secret|pass/i.test(k)) secrets.push(v);
  const expected = spec.expectStatus === undefined ? undefined : Array.isArray(spec.expectStatus) ? spec.expectStatus : [spec.expectStatus];
  const statusOk = (s: number): boolean => (expected ? expected.includes(s) : s >= 200 && s < 400);
  const label = `http ${method} ${redactUrl(spec.http)}`;
  const clean = (text: string): string => redactText(text, secrets);

  return {
    label,
    async check(signal: AbortSignal): Promise<ProbeResult> {
      if (signal.aborted) return failure(label, abortReason(signal));
      let res: Response;
      try {
        res = await fetch(url, { method, headers, redirect: 'manual', signal });
      } catch (err) {
        if (signal.aborted) return failure(label, abortReason(signal));
        const cause = (err as { cause?: unknown }).cause;
        return failure(label, clean(describeNetError(cause ?? err)));
      }
      if (statusOk(res.status)) {
        await discard(res);
        const location = res.status >= 300 && res.status < 400 ? res.headers.get('location') : null;
        return { ok: true, detail: `HTTP ${res.status}${location ? ` → ${clean(location)}` : ''}` };
      }
      const excerpt = await readExcerpt(res, signal);
      const want = expected ? `, expected ${expected.join(' or ')}` : '';
      const text = res.statusText ? ` ${res.statusText}` : '';
      return failure(label, clean(`HTTP ${res.status}${text}${want}${excerpt ? `: ${excerpt}` : ''}`));
    },
  };
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // The stream may already be closed or errored; either way nothing is left to release.
  }
}

/** First line-ish of the body, for the reason: servers often say why they answer 503. */
async function readExcerpt(res: Response, signal: AbortSignal): Promise<string> {
  const body = res.body;
  if (!body) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < EXCERPT_CHARS && !signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // A body cut short still gives us what arrived.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS)}…` : flat;
}
