// Durations in user-facing reasons read the way the config writes them: 500ms, 1.5s, 60s, 5m.

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms >= 120_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : Number(s.toFixed(3))}s`;
}
