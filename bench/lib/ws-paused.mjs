// Two WebSocket clients following one unit on bk-supervisor's control API, in a process of
// their own: `paused` stops reading its socket right after its hello, before the first line (the
// kernel's buffers fill, then the daemon stops sending to it), and reads again after PAUSE_MS;
// `normal` reads all along.
//   node ws-paused.mjs PORT TOKEN UNIT EXPECTED_LINES PAUSE_MS TIMEOUT_MS
// Prints `ready` once both have their hello (the paused one already paused), `resumed` when the
// paused one reads again, then one JSON line at the end:
//   { paused: { doneAt, lines, gaps, droppedLines, lost }, normal: { … }, resumedAt }
// `lost`: lines not received in order (the writer numbers its lines 1, 2, …).
import WebSocket from 'ws';
import { closeTallies, countFrame, newTally } from './ws-tally.mjs';

const [port, token, unit, expected, pauseMs, timeoutMs] = process.argv.slice(2);
const want = Number(expected);
const now = () => performance.timeOrigin + performance.now();
let hellos = 0;
let resumedAt = null;
const clients = {};

const finish = () => {
  closeTallies(Object.values(clients), want);
  console.log(JSON.stringify({ ...clients, resumedAt }));
  process.exit(0);
};
setTimeout(finish, Number(timeoutMs)).unref();

for (const name of ['paused', 'normal']) {
  const r = newTally();
  clients[name] = r;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/logs?units=${unit}&follow=1&token=${token}`);
  ws.on('message', (data) => {
    const text = data.toString();
    if (text.startsWith('{"type":"hello"')) {
      if (name === 'paused') {
        ws._socket.pause();
        setTimeout(() => {
          resumedAt = now();
          console.log('resumed');
          ws._socket.resume();
        }, Number(pauseMs));
      }
      if (++hellos === 2) console.log('ready');
      return;
    }
    countFrame(r, text);
    if (r.doneAt === null && r.lines >= want) {
      r.doneAt = now();
      if (clients.paused.doneAt !== null && clients.normal.doneAt !== null) finish();
    }
  });
  ws.on('error', (err) => console.error(`${name}: ${err.message}`));
}
