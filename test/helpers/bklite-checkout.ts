// Writes a BK-Lite-shaped checkout into a directory (nothing in it comes from BK-Lite):
//
//   docker-compose.dev.yml   BK-Lite's service names, credentials and host ports (each port
//                            `${NAME:-default}`, so a test publishes them on free ports); images
//                            from a local registry (see bklite-images.ts), mlflow built on one
//   dev.sh                   present, as in the huangpu-dev branch the stack is made for
//   server/                  test/fixtures/bklite-checkout/server: Django + uv (pyproject.toml,
//                            uv.lock), BK-Lite's management commands, nats_listener on nats-py
//   web/                     test/fixtures/bklite-checkout/web: pnpm (package.json,
//                            pnpm-lock.yaml), a `dev` server proxying /api/proxy/* to
//                            ${NEXTAPI_URL}/api/v1/*
//
// Fresh as a clone is: no server/.venv, no web/node_modules, no server/.env, no web/.env.local.

import { chmodSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.ts';

export const FIXTURE_DIR = join(import.meta.dirname, '..', 'fixtures', 'bklite-checkout');

/** The environment names of bkliteConfig (examples/bklite/stack.ts) for every host port. */
export const PORT_KEYS = [
  'POSTGRES_PORT',
  'REDIS_PORT',
  'NATS_PORT',
  'MINIO_PORT',
  'VICTORIA_METRICS_PORT',
  'VICTORIA_LOGS_PORT',
  'FALKORDB_PORT',
  'MLFLOW_PORT',
  'SERVER_PORT',
  'WEB_PORT',
] as const;
export type PortKey = (typeof PORT_KEYS)[number];
export type StackPorts = Record<PortKey, number>;

export async function freeStackPorts(): Promise<StackPorts> {
  const ports: Partial<StackPorts> = {};
  const taken = new Set<number>();
  for (const key of PORT_KEYS) {
    let p = await freePort();
    while (taken.has(p)) p = await freePort();
    taken.add(p);
    ports[key] = p;
  }
  return ports as StackPorts;
}

/** The stack's ports as the environment bksup (and the compose file's interpolation) reads. */
export function portsEnv(ports: StackPorts): Record<PortKey, string> {
  return Object.fromEntries(PORT_KEYS.map((k) => [k, String(ports[k])])) as Record<PortKey, string>;
}

/** The image of every pulled service (mlflow is built FROM `mlflow-base`). */
export const PULLED_SERVICES = ['postgres', 'redis', 'nats', 'minio', 'victoria-metrics', 'victoria-logs', 'falkordb'] as const;
export type CheckoutImages = Record<(typeof PULLED_SERVICES)[number] | 'mlflow-base', string>;

export function composeFile(images: CheckoutImages): string {
  const http = (name: 'minio' | 'victoria-metrics' | 'victoria-logs', port: number, envPort: PortKey, def: number, extra: string[] = []): string[] => [
    `  ${name}:`,
    `    image: ${images[name]}`,
    `    command: ["${port}"]`,
    ...extra,
    `    ports: ["\${${envPort}:-${def}}:${port}"]`,
  ];
  return [
    "# BK-Lite-shaped dev dependencies for bk-supervisor tests: BK-Lite's service names, credentials",
    '# and host ports; the images are local stand-ins (see test/helpers/bklite-images.ts).',
    'services:',
    '  postgres:',
    `    image: ${images.postgres}`,
    '    environment:',
    '      POSTGRES_USER: postgres',
    '      POSTGRES_PASSWORD: bklite_dev_pass',
    '      POSTGRES_DB: bklite',
    '    ports: ["${POSTGRES_PORT:-15432}:5432"]',
    '    volumes: ["postgres_data:/var/lib/postgresql/data"]',
    '  redis:',
    `    image: ${images.redis}`,
    '    command: ["--requirepass", "bklite_redis_pass", "--save", ""]',
    '    ports: ["${REDIS_PORT:-16380}:6379"]',
    '  nats:',
    `    image: ${images.nats}`,
    '    command: ["-js", "-sd", "/data"]',
    '    ports: ["${NATS_PORT:-14222}:4222"]',
    '    volumes: ["nats_data:/data"]',
    ...http('minio', 9000, 'MINIO_PORT', 19000, ['    environment:', '      MINIO_ROOT_USER: minioadmin', '      MINIO_ROOT_PASSWORD: minioadmin123']),
    ...http('victoria-metrics', 8428, 'VICTORIA_METRICS_PORT', 18428),
    ...http('victoria-logs', 9428, 'VICTORIA_LOGS_PORT', 19428),
    '  falkordb:',
    `    image: ${images.falkordb}`,
    '    command: ["--save", ""]',
    '    ports: ["${FALKORDB_PORT:-16479}:6379"]',
    // As in BK-Lite, mlflow is the one service that is built, not pulled.
    '  mlflow:',
    '    build: ./support-files/mlflow',
    '    command: ["5000"]',
    '    depends_on: [postgres, minio]',
    '    ports: ["${MLFLOW_PORT:-15000}:5000"]',
    'volumes:',
    '  postgres_data: {}',
    '  nats_data: {}',
    '',
  ].join('\n');
}

/** Writes the checkout into `dir` (which should be named `bksuptest-…`: it is the compose project). */
export function writeBkliteCheckout(dir: string, images: CheckoutImages): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'docker-compose.dev.yml'), composeFile(images));
  mkdirSync(join(dir, 'support-files', 'mlflow'), { recursive: true });
  writeFileSync(join(dir, 'support-files', 'mlflow', 'Dockerfile'), `FROM ${images['mlflow-base']}\nCMD ["5000"]\n`);
  writeFileSync(join(dir, 'dev.sh'), '#!/bin/sh\necho "BK-Lite-shaped test checkout: use bksup up" >&2\nexit 1\n');
  chmodSync(join(dir, 'dev.sh'), 0o755);
  writeFileSync(join(dir, '.gitignore'), ['server/.env', 'server/.venv/', 'web/.env.local', 'web/node_modules/', ''].join('\n'));
  for (const part of ['server', 'web']) {
    cpSync(join(FIXTURE_DIR, part), join(dir, part), {
      recursive: true,
      // a developer's run of the fixture in place must not make the checkout less fresh
      filter: (src) => !/(^|\/)(\.venv|node_modules|__pycache__|\.env|\.env\.local)$/.test(src),
    });
  }
}
