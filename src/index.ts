// The public face of bk-supervisor for config files: `defineConfig` and the config types.
// Kept free of runtime dependencies, because every `supervisor.config.ts` imports it.

import type { ConfigInput } from './config/types.ts';

export type * from './config/types.ts';

/**
 * Identity function that gives a config file types and editor completion:
 * `export default defineConfig({ units: { ... } })`, or a (sync or async) function returning the config.
 */
export function defineConfig<T extends ConfigInput>(config: T): T {
  return config;
}
