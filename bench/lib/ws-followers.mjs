// N WebSocket clients following one unit's live log on bk-supervisor's control API, in a
// process of their own (so the harness's polling does not slow them, nor they it).
//   node ws-followers.mjs PORT TOKEN UNIT CLIENTS EXPECTED_LINES TIMEOUT_MS
// Prints `ready` once every client got its hello, then one JSON line at the end:
//   { clients: [{ doneAt, lines, gaps, droppedLines, lost }], }
// A client is done when it holds EXPECTED_LINES stdout lines. `lost`: lines it did not receive
// in order (missing, repeated or out of order: the writer numbers its lines 1, 2, …). Frames are
// scanned, not parsed: the clients should cost as little CPU as possible, since they share the
// machine's two cores with the daemon being measured.
import WebSocket from 'ws';
import { closeTallies, countFrame, newTally } from './ws-tally.mjs';

const [port, token, unit, nClients, expected, timeoutMs] = process.argv.slice(2);
const n = Number(nClients);
const want = Number(expected);
const now = () => performance.timeOrigin + performance.now();
const results = [];
let hellos = 0;
let done = 0;

const finish = () => {
  closeTallies(results, want);
  console.log(JSON.stringify({ clients: results }));
  process.exit(0);
};
setTimeout(finish, Number(timeoutMs)).unref();

for (let i = 0; i < n; i++) {
  const r = newTally();
  results.push(r);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/logs?units=${unit}&follow=1&token=${token}`);
  ws.on('message', (data) => {
    const text = data.toString();
    if (text.startsWith('{"type":"hello"')) {
      if (++hellos === n) console.log('ready');
      return;
    }
    countFrame(r, text);
    if (r.doneAt === null && r.lines >= want) {
      r.doneAt = now();
      if (++done === n) finish();
    }
  });
  ws.on('error', (err) => console.error(`client ${i}: ${err.message}`));
}
