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

const [port, token, unit, nClients, expected, timeoutMs] = process.argv.slice(2);
const n = Number(nClients);
const want = Number(expected);
const now = () => performance.timeOrigin + performance.now();
const results = [];
let hellos = 0;
let done = 0;
const STDOUT = '"stream":"stdout"';
const LINE = '"line":"';

const finish = () => {
  for (const r of results) {
    r.lost = want - r.inOrder;
    delete r.inOrder;
    delete r.next;
  }
  console.log(JSON.stringify({ clients: results }));
  process.exit(0);
};
setTimeout(finish, Number(timeoutMs)).unref();

for (let i = 0; i < n; i++) {
  const r = { doneAt: null, lines: 0, gaps: 0, droppedLines: 0, lost: 0, inOrder: 0, next: 1 };
  results.push(r);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/logs?units=${unit}&follow=1&token=${token}`);
  ws.on('message', (data) => {
    const text = data.toString();
    if (text.startsWith('{"type":"hello"')) {
      if (++hellos === n) console.log('ready');
      return;
    }
    if (text.startsWith('{"type":"gap"')) {
      r.gaps++;
      const m = /"dropped":(\d+)/.exec(text);
      if (m) r.droppedLines += Number(m[1]);
      return;
    }
    for (let at = text.indexOf(STDOUT); at !== -1; at = text.indexOf(STDOUT, at + STDOUT.length)) {
      r.lines++;
      // The writer's number: the first 7 characters of the line (the field after stream).
      const l = text.indexOf(LINE, at) + LINE.length;
      if (Number(text.slice(l, l + 7)) === r.next) {
        r.inOrder++;
        r.next++;
      }
    }
    if (r.doneAt === null && r.lines >= want) {
      r.doneAt = now();
      if (++done === n) finish();
    }
  });
  ws.on('error', (err) => console.error(`client ${i}: ${err.message}`));
}
