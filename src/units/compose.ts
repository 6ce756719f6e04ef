// A docker compose service, probed from the host.
//
//            start()               Docker not reachable (the unit env's DOCKER_HOST…) and never
//   stopped ─┐                ┌─────────── reached in this run ───────────────────────► failed
//            │                │ Docker gone after it had been reached: backoff, checking every
//            │                │ DOCKER_POLL_MS until it answers, then starting (no budget spent)
//   pending ─┼────────► starting ── `up` / inspect failed ───────────────────────────┐
//   failed ──┘             ▲  │                                                      │
//       backoff timer, or  │  │ container running: ours (`up -d --no-deps`),         │
//     a `start` event that │  │ or adopted (it was running before we started)        │
//      Docker caused itself│  ▼                                                      │
//                          │ running ── first probe pass / no healthcheck ──► healthy│
//                          │  │  ▲                      `retries` failures      │    │
//                          │  │  └── probe passes again ── unhealthy ◄──────────┘    │
//                          │  │                               │                      │
//                          │  │ container died                │                      │
//                          │  │ (docker events `die`)         │ `compose stop` (the  │
//                          │  │                               │ `die` it causes is   │
//                          │  │                               ▼ no failure)          │
//                          │  │    (shown as `stopping`) recreating                  │
//                          │  │                               │                      │
//                          │  ▼                               │                      │
//                          └─ backoff ◄───────────────────────┴──────────────────────┘
//                               │
//                               └── budget spent ──► failed
//
//   stop(): starting / running / healthy / unhealthy / recreating → stopping →
//           ours: `compose stop -t N <service>` (never `down`, never a volume) → stopped;
//           adopted: left running, and `stopped` says so. backoff → stopped at once.
//           A second stop() while stopping waits for the first one.
//   Adoption is judged on the first start only: once we `up` the container (it died, or the
//   user restarted it), it is ours and is stopped with the rest.
//
// Who causes what: the supervisor (start/stop), the user (start/stop/restart), Docker
// (`die`/`start` events through one `docker events` per project), the HealthMonitor, the backoff
// timer. Every async step carries the generation it began in and is dropped when it is stale.

import type { ResolvedComposeUnit } from '../config/types.ts';
import { ComposeProject, dockerReachable, type LogFollower } from '../compose/driver.ts';
import { createProbe } from '../health/registry.ts';
import { HealthMonitor } from '../health/monitor.ts';
import { LineSplitter } from '../logs/line-splitter.ts';
import { UnitBase, type UnitDeps } from './unit.ts';

/**
 * One ComposeProject per (file, project), shared by the units of that project. Its CLIs run with
 * the env of the first unit that asked (compose interpolation, DOCKER_HOST): units of one project
 * are expected to agree on those.
 */
export class ComposeProjects {
  readonly #projects = new Map<string, ComposeProject>();

  get(file: string, project: string, cwd: string, env: Readonly<Record<string, string>>): ComposeProject {
    const key = `${file}\0${project}`;
    let p = this.#projects.get(key);
    if (!p) {
      p = new ComposeProject({ file, project, cwd, env });
      this.#projects.set(key, p);
    }
    return p;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#projects.values()].map((p) => p.close()));
    this.#projects.clear();
  }
}

export interface ComposeUnitDeps extends UnitDeps {
  projects: ComposeProjects;
  root: string;
}

interface Attached {
  id: string;
  startedAt: number;
  /**
   * Where this run's output begins in `docker logs`: after the previous run's end, not at
   * StartedAt, which dockerd can record after it has already timestamped the first lines (a
   * loaded machine: nats' whole start-up output was lost that way).
   */
  logsFrom: number | undefined;
  logs: LogFollower | undefined;
  monitor: HealthMonitor | undefined;
}

type State =
  | { name: 'idle' }
  | { name: 'starting'; gen: number }
  | { name: 'running' | 'healthy' | 'unhealthy'; gen: number; c: Attached }
  /** Unhealthy: `compose stop` in flight, then backoff and `up` again (published as `stopping`). */
  | { name: 'recreating'; gen: number; c: Attached }
  | { name: 'stopping'; gen: number; done: Promise<void> }
  | { name: 'backoff'; gen: number; timer: NodeJS.Timeout };

/** How often a unit waiting for Docker to come back asks whether it answers. */
const DOCKER_POLL_MS = 1000;

export class ComposeUnit extends UnitBase {
  readonly kind = 'compose' as const;
  readonly config: ResolvedComposeUnit;
  readonly #project: ComposeProject;
  #state: State = { name: 'idle' };
  #gen = 0;
  #events: { close(): Promise<void> } | undefined;
  /** Adoption is judged only on the first start of this daemon run. */
  #firstStart = true;
  /**
   * Docker answered once in this run: when it stops answering later, it is restarting (Docker
   * Desktop, an upgrade, a laptop waking up) and the unit waits for it instead of failing.
   */
  #dockerSeen = false;

  constructor(config: ResolvedComposeUnit, deps: ComposeUnitDeps) {
    super(config, deps);
    this.config = config;
    this.#project = deps.projects.get(config.file, config.project, deps.root, config.env);
  }

  /** pids of the docker / compose CLI processes working for this unit's project right now. */
  childPids(): number[] {
    return this.#project.childPids();
  }

  start(): void {
    const s = this.#state;
    switch (s.name) {
      case 'idle':
        void this.#begin();
        return;
      case 'backoff':
        clearTimeout(s.timer);
        void this.#begin();
        return;
      case 'starting':
      case 'running':
      case 'healthy':
      case 'unhealthy':
      case 'recreating':
      case 'stopping':
        return;
    }
  }

  async stop(reason: string): Promise<void> {
    const s = this.#state;
    switch (s.name) {
      case 'idle':
        if (this.state === 'pending') this.publish('stopped', { reason, pid: null });
        await this.#closeEvents();
        return;
      case 'backoff':
        this.#gen++;
        clearTimeout(s.timer);
        this.#state = { name: 'idle' };
        this.publish('stopped', { reason, pid: null });
        await this.#closeEvents();
        return;
      case 'stopping':
        // A second stop (user stop, then shutdown) waits for the first; it must not make it stale.
        return s.done;
      case 'starting':
      case 'running':
      case 'healthy':
      case 'unhealthy':
      case 'recreating': {
        const gen = ++this.#gen;
        const c = 'c' in s ? s.c : undefined;
        const done = this.#stopContainer(gen, c, reason);
        this.#state = { name: 'stopping', gen, done };
        return done;
      }
    }
  }

  async restart(reason: string): Promise<void> {
    this.clearCrashHistory();
    this.adopted = false; // a restart the user asked for makes the container ours
    await this.stop(reason);
    this.start();
  }

  async #stopContainer(gen: number, c: Attached | undefined, reason: string): Promise<void> {
    c?.monitor?.stop();
    if (this.adopted) {
      await c?.logs?.close();
      await this.#closeEvents();
      this.#state = { name: 'idle' };
      this.publish('stopped', { reason: `${reason}; container was running before the supervisor started, left running`, pid: null });
      return;
    }
    this.publish('stopping', { reason });
    const res = await this.#project.stop(this.config.service, this.config.stop.timeoutMs / 1000);
    await c?.logs?.close();
    await this.#closeEvents();
    if (gen !== this.#gen) return;
    this.#state = { name: 'idle' };
    if (!res.ok) this.system(`stop failed: ${res.reason}`);
    this.publish('stopped', { reason: res.ok ? reason : `${reason}; ${res.reason}`, pid: null });
  }

  async #closeEvents(): Promise<void> {
    const ev = this.#events;
    this.#events = undefined;
    await ev?.close();
  }

  async #begin(): Promise<void> {
    const gen = ++this.#gen;
    this.#state = { name: 'starting', gen };
    this.publish('starting', { pid: null, exitCode: null });
    // The unit's env, not ours: DOCKER_HOST / DOCKER_CONTEXT there choose the daemon, as they do for compose.
    const docker = await dockerReachable({ env: this.config.env });
    if (gen !== this.#gen) return;
    if (!docker.ok) return this.#dockerSeen ? this.#waitForDocker(docker.reason) : this.#fail(docker.reason);
    this.#dockerSeen = true;
    this.#events ??= this.#project.watchEvents((ev) => {
      if (ev.service !== this.config.service) return;
      if (ev.action === 'die') this.#onDie(ev.id, ev.exitCode, ev.time);
      else if (ev.action === 'start') this.#onStarted(ev.id);
    });
    const existing = await this.#project.containerId(this.config.service);
    if (gen !== this.#gen) return;
    if (!existing.ok) return this.#afterExit(existing.reason, null);
    let id = existing.id;
    let adopted = false;
    if (id) {
      const info = await this.#project.inspect(id);
      if (gen !== this.#gen) return;
      // Adopt only what was running before this daemon started anything for the unit.
      adopted = info.ok && info.running && this.#firstStart;
      if (!(info.ok && info.running)) id = undefined;
    }
    this.#firstStart = false;
    if (!id) {
      // From here on the container is ours, even if it was adopted before it died.
      this.adopted = false;
      const image = await this.#project.ensureImage(this.config.service, (line) => this.system(line));
      if (gen !== this.#gen) return;
      if (!image.ok) return this.#fail(image.reason);
      this.system(`docker compose up -d --no-deps ${this.config.service}`);
      const up = await this.#project.up(this.config.service);
      if (gen !== this.#gen) return;
      if (up.output.trim()) this.emitLines('stdout', up.output.trim().split('\n'));
      if (!up.ok) return this.#afterExit(up.reason, null);
      const after = await this.#project.containerId(this.config.service);
      if (gen !== this.#gen) return;
      if (!after.ok || !after.id) return this.#afterExit(after.ok ? 'no container after `up`' : after.reason, null);
      id = after.id;
    }
    if (adopted) {
      this.adopted = true;
      this.system(`adopted container ${id.slice(0, 12)}: it was already running; it will be left running when the supervisor stops`);
    }
    await this.#attach(gen, id);
  }

  async #attach(gen: number, id: string): Promise<void> {
    const info = await this.#project.inspect(id);
    if (gen !== this.#gen) return;
    if (!info.ok) return this.#afterExit(info.reason, null);
    if (!info.running) return this.#afterExit(`container exited with code ${info.exitCode}`, info.exitCode);
    const startedAt = Date.parse(info.startedAt) || Date.now();
    // The previous run of this container ended here (`up` restarts a container in place); never
    // started before: the epoch's year 1, i.e. no bound.
    const finished = Date.parse(info.finishedAt);
    const logsFrom = finished > 0 && finished <= startedAt ? finished : undefined;
    const c: Attached = { id, startedAt, logsFrom, logs: undefined, monitor: undefined };
    this.#state = { name: 'running', gen, c };
    this.publish('running', { pid: info.pid || null, reason: this.adopted ? 'adopted (was already running)' : null });
    this.#followLogs(gen, c);
    this.#watchHealth(gen, c);
  }

  #followLogs(gen: number, c: Attached): void {
    const out = new LineSplitter();
    const err = new LineSplitter();
    // Adopted containers: only what comes from now on; ours: everything of this run (a line of
    // the previous run stamped after its end may repeat: that loses nothing).
    const since = this.adopted ? Date.now() : c.logsFrom;
    c.logs = this.#project.followLogs(
      c.id,
      since === undefined ? {} : { since },
      (stream, chunk) => {
        if (gen === this.#gen) this.emitLines(stream, (stream === 'stdout' ? out : err).push(chunk));
      },
      () => {
        if (gen !== this.#gen) return;
        this.emitLines('stdout', out.end());
        this.emitLines('stderr', err.end());
      },
    );
  }

  #watchHealth(gen: number, c: Attached): void {
    const hc = this.config.healthcheck;
    if (!hc) {
      this.#enter(gen, c, 'healthy');
      return;
    }
    const probe = createProbe(hc.probe, {
      unit: this.name,
      cwd: this.config.file.replace(/\/[^/]*$/, ''),
      env: this.config.env,
      timeoutMs: hc.timeoutMs,
      onLogs: (fn) => this.bus.onLogs((b) => b.unit === this.name && fn(b)),
      containerId: () => c.id,
    });
    c.monitor = new HealthMonitor(probe, hc, {
      onHealthy: () => this.#enter(gen, c, 'healthy'),
      onUnhealthy: (reason) => {
        if (!this.#current(gen, c)) return;
        this.health = `failing: ${reason}`;
        this.#enter(gen, c, 'unhealthy', reason);
        // Compose containers are recreated by `up`: stop it and let the restart path bring it back.
        void this.#recreate(gen, c, `unhealthy: ${reason}`);
      },
      onProgress: (r) => {
        if (this.#current(gen, c)) this.health = r.ok ? 'passing' : `failing: ${r.reason}`;
      },
      onAttempt: (a) => this.bus.publishProbe({ unit: this.name, ...a }),
    });
    c.monitor.start();
  }

  override hintReady(): void {
    const s = this.#state;
    if (s.name === 'running') s.c.monitor?.poke(0);
  }

  /** Still attached to `c` in this generation (running, healthy or unhealthy; not recreating). */
  #current(gen: number, c: Attached): boolean {
    const s = this.#state;
    return gen === this.#gen && (s.name === 'running' || s.name === 'healthy' || s.name === 'unhealthy') && s.c === c;
  }

  #enter(gen: number, c: Attached, state: 'healthy' | 'unhealthy', reason?: string): void {
    if (!this.#current(gen, c)) return;
    if (state === 'healthy' && this.config.healthcheck) this.health = 'passing';
    this.#state = { name: state, gen, c };
    this.publish(state, reason ? { reason } : {});
  }

  async #recreate(gen: number, c: Attached, why: string): Promise<void> {
    c.monitor?.stop();
    // Its own `die` (from our stop) must not count as a second, separate failure.
    this.#state = { name: 'recreating', gen, c };
    this.publish('stopping', { reason: why });
    const res = await this.#project.stop(this.config.service, this.config.stop.timeoutMs / 1000);
    await c.logs?.close();
    if (gen !== this.#gen) return;
    if (!res.ok) this.system(`stop failed: ${res.reason}`);
    this.#afterExit(why, null, true);
  }

  #onDie(id: string, exitCode: number | undefined, time: number): void {
    const s = this.#state;
    if (s.name !== 'running' && s.name !== 'healthy' && s.name !== 'unhealthy') return;
    // A replayed or late event of an earlier run of the same container (`up` restarts it in place).
    if (s.c.id !== id || time < s.c.startedAt) return;
    const { gen, c } = s;
    c.monitor?.stop();
    void c.logs?.done.then(() => {
      if (this.#current(gen, c)) this.#afterExit(`container died (exit code ${exitCode ?? '?'})`, exitCode ?? null, true);
    });
  }

  /** A `start` of our service's container we did not cause (docker's own restart policy, `docker start`). */
  #onStarted(id: string): void {
    const s = this.#state;
    if (s.name === 'backoff') {
      clearTimeout(s.timer);
      const gen = ++this.#gen;
      this.#state = { name: 'starting', gen };
      this.publish('starting', { pid: null, reason: 'container started outside the supervisor' });
      void this.#attach(gen, id);
    }
  }

  #afterExit(why: string, exitCode: number | null, ranOnce = false): void {
    const gen = ++this.#gen;
    const decision = this.decideRestart(true, ranOnce ? Date.now() - this.#startedAt() : 0);
    if (decision.action === 'restart') {
      const reason = `${why}; restart ${decision.attempt} in ${decision.delayMs} ms`;
      const timer = setTimeout(() => {
        if (this.#state.name === 'backoff' && this.#state.timer === timer) void this.#begin();
      }, decision.delayMs);
      this.#state = { name: 'backoff', gen, timer };
      this.publish('backoff', { pid: null, exitCode, reason });
      return;
    }
    this.#fail(decision.action === 'give-up' ? `${decision.why}; last: ${why}` : why, exitCode);
  }

  /**
   * Backoff that is no crash: checks every DOCKER_POLL_MS whether Docker answers again, then
   * starts as usual (`up` reuses the project's container: never a second copy).
   */
  #waitForDocker(why: string): void {
    const gen = ++this.#gen;
    const check = async (): Promise<void> => {
      if (this.#state.name !== 'backoff' || this.#state.gen !== gen) return;
      const docker = await dockerReachable({ env: this.config.env });
      if (this.#state.name !== 'backoff' || this.#state.gen !== gen) return;
      if (docker.ok) return this.#begin();
      this.#state = { name: 'backoff', gen, timer: setTimeout(() => void check(), DOCKER_POLL_MS) };
    };
    this.#state = { name: 'backoff', gen, timer: setTimeout(() => void check(), DOCKER_POLL_MS) };
    this.publish('backoff', { pid: null, reason: `waiting for Docker to come back (${why}); checking every ${DOCKER_POLL_MS / 1000} s` });
  }

  #startedAt(): number {
    const s = this.#state;
    return 'c' in s ? s.c.startedAt : Date.now();
  }

  #fail(why: string, exitCode: number | null = null): void {
    this.#gen++;
    this.#state = { name: 'idle' };
    this.publish('failed', { pid: null, exitCode, reason: this.tailReason(why) });
  }
}
