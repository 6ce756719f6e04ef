#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx registers its ESM loader in this process
// (module.register needs Node >= 20.6), so there is no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
