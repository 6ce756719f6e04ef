// Live config reload, the daemon's side: load and validate the new config (in the loader child,
// as `up` does), refuse it whole when it is invalid (the errors go to the terminal, events,
// supervisor.log, the dashboard and `status`, the running stack untouched), otherwise apply the
// difference (src/reload-plan.ts) and re-arm the file watches for the new config.
//
// One reload at a time: a request during a reload makes exactly one more run after it, so a
// burst of saves never queues a burst of reloads and the last edit is always the one applied.

import { loadConfig, type LoadOptions } from './config/load.ts';
import type { ResolvedConfig } from './config/types.ts';
import type { ReloadEvent } from './events.ts';
import { checkPrograms, withPathAdditions } from './preflight.ts';
import { describePlan, planReload, type ReloadPlan } from './reload-plan.ts';
import type { Supervisor } from './supervisor.ts';

export type ReloadOutcome = { ok: true; summary: string; plan: ReloadPlan; warnings: string[] } | { ok: false; errors: string[] };

export interface ReloaderOptions {
  load: LoadOptions;
  sup: Supervisor;
  /** Called after every reload that loaded a config (applied or not), with the files it came from. */
  onSources?: (sources: readonly string[]) => void;
  /** Called after a valid config was applied. */
  onApplied?: (config: ResolvedConfig) => void | Promise<void>;
}

export class Reloader {
  readonly #opts: ReloaderOptions;
  #running: Promise<ReloadOutcome> | undefined;
  #again: { trigger: string; promise: Promise<ReloadOutcome> } | undefined;
  #last: ReloadEvent | undefined;

  constructor(opts: ReloaderOptions) {
    this.#opts = opts;
  }

  /** The last reload's event (undefined before the first one). */
  get last(): ReloadEvent | undefined {
    return this.#last;
  }

  reload(trigger: string): Promise<ReloadOutcome> {
    if (!this.#running) {
      this.#running = this.#run(trigger).finally(() => (this.#running = undefined));
      return this.#running;
    }
    if (!this.#again) {
      const after = this.#running.then(() => {
        this.#again = undefined;
        return this.reload(trigger);
      });
      this.#again = { trigger, promise: after };
    }
    return this.#again.promise;
  }

  async #run(trigger: string): Promise<ReloadOutcome> {
    const { sup } = this.#opts;
    const loaded = await loadConfig(this.#opts.load);
    if (loaded.sources?.length) this.#opts.onSources?.(loaded.sources);
    if (sup.shuttingDown) return { ok: false, errors: ['the supervisor is shutting down'] };
    if (!loaded.ok) {
      this.#publish({ type: 'reload', ts: Date.now(), ok: false, trigger, errors: loaded.errors });
      return { ok: false, errors: loaded.errors };
    }
    // Programs found outside PATH get the same PATH as at `up`, or every such unit would differ.
    const { problems, pathAdditions } = checkPrograms(loaded.config);
    const next = withPathAdditions(loaded.config, pathAdditions);
    const plan = planReload(sup.config, next);
    await sup.applyConfig(next, plan);
    const summary = describePlan(plan);
    const warnings = problems.map((p) => `${p.unit ? `${p.unit}: ` : ''}${p.message}`);
    this.#publish({ type: 'reload', ts: Date.now(), ok: true, trigger, summary: warnings.length ? `${summary}; preflight: ${warnings.join('; ')}` : summary });
    await this.#opts.onApplied?.(next);
    return { ok: true, summary, plan, warnings };
  }

  #publish(e: ReloadEvent): void {
    this.#last = e;
    this.#opts.sup.bus.publishEvent(e);
  }
}
