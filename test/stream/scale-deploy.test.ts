import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { load, loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { registerPipelineJobs } from '../../src/cli/platform.js';
import { configEnvNames, loadConfig, type TributaryConfig } from '../../src/core/index.js';
import { pipelineDefinitions, resolvePipelineSettings } from '../../src/pipelines/index.js';
import { jobRegistry, planScaledJob } from '../../src/stream/index.js';

// deploy/ (compose file, Kubernetes manifests, Dockerfile) checked against the CLI's own reference:
// every image pinned; every tributary command and flag one the CLI defines; every environment
// variable a configuration key's or a pipeline setting's, with values the config schema accepts;
// every address a service that exposes that port; the workers' pipeline one whose stream jobs
// scale out, and left to them by `up`.
const deploy = path.resolve('deploy');
const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

type Env = Record<string, string>;
interface Container {
  where: string;
  image: string;
  command: string[];
  env: Env;
  /** Ports the container listens on. */
  ports: number[];
}
/** Service name → ports it exposes to the other containers. */
type Services = Map<string, number[]>;

interface ComposeService {
  image: string;
  command?: string[];
  entrypoint?: string[] | string;
  environment?: Record<string, string>;
  ports?: string[];
}

/** `${NAME:-default}` → default; `${NAME}` / `${NAME:?message}` → a placeholder (set by the operator). */
function interpolate(value: string): string {
  return value.replace(
    /\$\{([A-Z0-9_]+)(?::-([^}]*)|:\?[^}]*)?\}/g,
    (_m, _name, fallback?: string) => fallback ?? 'set-by-operator',
  );
}

function composeShape(): { containers: Container[]; services: Services } {
  const file = load(readFileSync(path.join(deploy, 'compose.yaml'), 'utf8')) as {
    services: Record<string, ComposeService>;
  };
  const containers: Container[] = [];
  const services: Services = new Map();
  for (const [name, service] of Object.entries(file.services)) {
    const env = Object.fromEntries(
      Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]),
    );
    // Published ports ("host:container"): on the compose network a service answers on the container port.
    const ports = (service.ports ?? []).map((p) => Number(String(p).split(':').at(-1)));
    services.set(name, ports);
    containers.push({
      where: `compose.yaml services.${name}`,
      image: service.image,
      command: service.command ?? [],
      env,
      ports,
    });
  }
  return { containers, services };
}

interface K8sObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    ports?: { port: number; targetPort: number }[];
    selector?: Record<string, string> | { matchLabels: Record<string, string> };
    template?: { metadata?: { labels?: Record<string, string> }; spec: K8sPodSpec };
  };
}
interface K8sPodSpec {
  containers: {
    name: string;
    image: string;
    command?: string[];
    args?: string[];
    env?: {
      name: string;
      value?: string;
      valueFrom?: {
        secretKeyRef?: { name: string; key: string };
        configMapKeyRef?: { name: string; key: string };
      };
    }[];
    envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
    ports?: { containerPort: number }[];
  }[];
}

function kubernetesShape(): { containers: Container[]; services: Services; objects: K8sObject[] } {
  const objects = readdirSync(path.join(deploy, 'kubernetes'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      loadAll(readFileSync(path.join(deploy, 'kubernetes', f), 'utf8')).map((o) => ({
        ...(o as K8sObject),
        file: f,
      })),
    );
  const byName = (kind: string, name: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
    expect(found, `${kind} ${name}`).toBeDefined();
    return found!;
  };
  const containers: Container[] = [];
  const services: Services = new Map();
  for (const o of objects) {
    if (o.kind === 'Service')
      services.set(
        o.metadata.name,
        (o.spec?.ports ?? []).map((p) => p.port),
      );
    const pod = o.spec?.template?.spec;
    if (pod === undefined) continue;
    for (const c of pod.containers) {
      const env: Env = {};
      for (const from of c.envFrom ?? []) {
        if (from.configMapRef) Object.assign(env, byName('ConfigMap', from.configMapRef.name).data);
        if (from.secretRef) Object.assign(env, byName('Secret', from.secretRef.name).stringData);
      }
      for (const e of c.env ?? []) {
        const secret = e.valueFrom?.secretKeyRef;
        const configMap = e.valueFrom?.configMapKeyRef;
        const value = secret
          ? byName('Secret', secret.name).stringData?.[secret.key]
          : configMap
            ? byName('ConfigMap', configMap.name).data?.[configMap.key]
            : e.value;
        expect(value, `${o.kind} ${o.metadata.name} env ${e.name}`).toBeDefined();
        env[e.name] = String(value);
      }
      containers.push({
        where: `kubernetes ${o.kind} ${o.metadata.name} container ${c.name}`,
        image: c.image,
        command: [...(c.command ?? []), ...(c.args ?? [])],
        env,
        ports: (c.ports ?? []).map((p) => p.containerPort),
      });
    }
  }
  return { containers, services, objects };
}

/** An exact version: not `latest`, not a bare major (`postgres:16`), or a digest. */
function pinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const tag = /:([^/:]+)$/.exec(image)?.[1];
  return (
    tag !== undefined &&
    tag !== 'latest' &&
    (/\d+\.\d+/.test(tag) || /^RELEASE\.\d{4}-\d{2}-\d{2}T/.test(tag))
  );
}

const knownVariables = new Set([
  ...Object.values(configEnvNames).flat(),
  ...pipelineDefinitions.flatMap((p) => Object.values(p.settings ?? {}).flatMap((s) => s.env)),
  // Read by `tributary up` itself (the admin key it creates), not a setting.
  'TRIBUTARY_ADMIN_KEY',
]);

/** Checks `tributary <command> …` against the CLI's command and option definitions. */
function checkCommand(program: Command, container: Container): { name: string; pipeline: string | null } {
  const [binary, name, ...rest] = container.command;
  expect(binary, `${container.where}: command`).toBe('tributary');
  const command = program.commands.find((c) => c.name() === name);
  expect(command, `${container.where}: tributary ${name} is not a command`).toBeDefined();
  let pipeline: string | null = null;
  const args = rest.filter((a) => !a.startsWith('-'));
  if (name === 'run') {
    pipeline = args[0];
    expect(
      pipelineDefinitions.map((p) => p.name),
      `${container.where}: pipeline`,
    ).toContain(pipeline);
  }
  const options = [...command!.options, ...program.options];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (!arg.startsWith('--')) continue;
    const flag = arg.split('=')[0];
    const option = options.find((o) => o.long === flag);
    expect(option, `${container.where}: ${flag} is not an option of tributary ${name}`).toBeDefined();
    if ((option!.required || option!.optional) && !arg.includes('=')) i++;
  }
  return { name, pipeline };
}

/** `scheme://[user@]host:port…` → host and port. */
function addressOf(url: string): { host: string; port: number } {
  const match = /^[a-z]+:\/\/(?:[^@/]*@)?([^:/,]+):(\d+)/.exec(url);
  expect(match, `no host:port in ${url}`).not.toBeNull();
  return { host: match![1], port: Number(match![2]) };
}

function checkShape(shape: { containers: Container[]; services: Services }): void {
  const program = buildProgram();
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'tributary-deploy-'));
  const reachable = (url: string, where: string) => {
    const { host, port } = addressOf(url);
    expect(shape.services.get(host), `${where}: ${url} names no service ${host}`).toBeDefined();
    expect(shape.services.get(host), `${where}: service ${host} does not expose port ${port}`).toContain(
      port,
    );
  };
  const tributary = shape.containers.filter((c) => c.image.startsWith('tributary:'));
  expect(tributary.length).toBeGreaterThanOrEqual(2);
  const roles = new Map<string, { config: TributaryConfig; pipeline: string | null }>();
  for (const c of shape.containers)
    expect(pinned(c.image), `${c.where}: image ${c.image} is not pinned`).toBe(true);
  for (const c of tributary) {
    expect(c.image, `${c.where}: the image built from this version`).toBe(`tributary:${version}`);
    const { name, pipeline } = checkCommand(program, c);
    for (const variable of Object.keys(c.env))
      expect(
        knownVariables.has(variable),
        `${c.where}: ${variable} is neither a config key's nor a pipeline setting's variable`,
      ).toBe(true);
    // The values as the CLI would read them (no config file, no .env).
    const config = loadConfig({ env: c.env, dotenv: false, cwd: scratch });
    for (const p of pipelineDefinitions) resolvePipelineSettings(p.name, p.settings ?? {}, config, c.env);
    // Scaled out, nothing is on local disk: the log is Kafka, the lake and checkpoints in S3.
    expect(config.log, `${c.where}: log`).toMatch(/^kafka:\/\//);
    expect(config.storage, `${c.where}: storage`).toMatch(/^s3:\/\//);
    for (const broker of config.log.slice('kafka://'.length).split(','))
      reachable(`kafka://${broker}`, c.where);
    expect(config.s3Endpoint, `${c.where}: s3Endpoint`).toBeDefined();
    reachable(config.s3Endpoint!, c.where);
    for (const value of Object.values(c.env))
      if (/^postgres(ql)?:\/\//.test(value)) reachable(value, c.where);
    if (name === 'up') {
      expect(c.ports, `${c.where}: the API port (config port ${config.port})`).toContain(config.port);
      expect(config.host, `${c.where}: the API must listen beyond the container`).toBe('0.0.0.0');
    }
    roles.set(name === 'run' ? 'worker' : name, { config, pipeline });
  }
  const worker = roles.get('worker');
  const up = roles.get('up');
  expect(worker?.pipeline, 'a `tributary run <pipeline> --worker` container').toBeTruthy();
  expect(up, 'a `tributary up` container').toBeDefined();
  // `up` must leave the workers' stream jobs to them, or every record is processed twice.
  expect(up!.config.workerPipelines.split(',')).toContain(worker!.pipeline);
  expect(tributary.find((c) => c.command[1] === 'run')!.command).toContain('--worker');
}

describe('deploy/: the scaled-out shape matches the CLI', () => {
  it('compose.yaml', () => {
    checkShape(composeShape());
  });

  it('Kubernetes manifests: containers, and every Service selects a pod template on a port it listens on', () => {
    const shape = kubernetesShape();
    checkShape(shape);
    for (const service of shape.objects.filter((o) => o.kind === 'Service')) {
      const selector = service.spec!.selector as Record<string, string>;
      const targets = shape.objects.filter((o) => {
        const labels = o.spec?.template?.metadata?.labels ?? {};
        return o.spec?.template !== undefined && Object.entries(selector).every(([k, v]) => labels[k] === v);
      });
      expect(targets.length, `Service ${service.metadata.name} selects no pods`).toBeGreaterThan(0);
      const listening = targets.flatMap((t) =>
        t.spec!.template!.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort)),
      );
      for (const port of service.spec!.ports ?? [])
        expect(listening, `Service ${service.metadata.name} targetPort ${port.targetPort}`).toContain(
          port.targetPort,
        );
    }
  });

  it('the Dockerfile starts from pinned images', () => {
    const froms = readFileSync(path.join(deploy, 'Dockerfile'), 'utf8')
      .split('\n')
      .filter((l) => /^FROM /.test(l))
      .map((l) => l.split(/\s+/)[1]);
    expect(froms.length).toBeGreaterThan(0);
    for (const image of froms) expect(pinned(image), image).toBe(true);
  });

  it("the workers' pipeline scales out: every stream job splits into tasks", async () => {
    const worker = composeShape().containers.find((c) => c.command[1] === 'run')!;
    const pipeline = worker.command[2];
    registerPipelineJobs();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tributary-deploy-jobs-'));
    const built = await jobRegistry
      .get(pipeline)
      .factory({ config: loadConfig({ env: { TRIBUTARY_DATA_DIR: dataDir }, dotenv: false, cwd: dataDir }) });
    try {
      expect((built.stream ?? []).length).toBeGreaterThan(0);
      for (const job of built.stream ?? []) expect(planScaledJob(job).length).toBeGreaterThanOrEqual(1);
    } finally {
      await built.close?.();
    }
  });
});
