// What the bench's WebSocket log clients (ws-followers.mjs, ws-paused.mjs) count per client.
// Frames are scanned, not parsed: the clients should cost as little CPU as possible, since they
// share the machine's two cores with the daemon being measured. `lost`: lines not received in
// order (missing, repeated or out of order: the writer numbers its lines 1, 2, …).

const STDOUT = '"stream":"stdout"';
const LINE = '"line":"';

export function newTally() {
  return { doneAt: null, lines: 0, gaps: 0, droppedLines: 0, lost: 0, inOrder: 0, next: 1 };
}

/** Counts one data frame (not a hello) into the tally. */
export function countFrame(r, text) {
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
}

/** The tallies as reported: `lost` filled in, the bookkeeping fields gone. */
export function closeTallies(tallies, want) {
  for (const r of tallies) {
    r.lost = want - r.inOrder;
    delete r.inOrder;
    delete r.next;
  }
}
