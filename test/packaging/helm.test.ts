// The helm/credvend chart, rendered and checked without a cluster or the helm binary (neither can
// be had here). scripts/helm/render.go renders it on helm's own engine (Go text/template + sprig,
// helm's include/tpl/toYaml/required, values.schema.json through helm's validator gojsonschema),
// built offline from Debian's Go sources. The rendered objects are then validated against the
// Kubernetes and Prometheus Operator schemas (kubernetes-models), and every env variable, port
// and probe path is checked against the service itself: the probes are sent to a running credvend.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT, run, startIssuer, tempRoot, removeTempRoot, type Issuer } from '../helpers/e2e.js';
import { startContainerStub, startStsStub, type ContainerStub, type StsStub } from '../helpers/fault-stubs.js';
import { adminGet, startService } from '../helpers/service-process.js';

const SUITE = 'packaging/helm';
const CHART = join(ROOT, 'helm/credvend');
// Schemas of the Kubernetes API and the Prometheus Operator CRDs: the pinned devDependencies
// kubernetes-models and @kubernetes-models/prometheus-operator (installed by `npm ci`).
const MODELS = join(ROOT, 'node_modules');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- rendered YAML, checked field by field below
  data?: Record<string, string>;
  automountServiceAccountToken?: boolean;
}

let renderer = '';
let skipReason: string | undefined;
let dir = '';

async function render(
  valueFiles: string[],
): Promise<{ code: number | null; objects: K8sObject[]; stderr: string; text: string }> {
  const r = await run(
    renderer,
    [...valueFiles.flatMap((f) => ['-f', f]), '--release', 'credvend', '--namespace', 'credvend', CHART],
    { timeoutMs: 30_000 },
  );
  const objects =
    r.code === 0
      ? parseAllDocuments(r.stdout)
          .map((d) => d.toJS() as K8sObject)
          .filter(Boolean)
      : [];
  return { code: r.code, objects, stderr: r.stderr, text: r.stdout };
}

const byKind = (objects: K8sObject[], kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);
const one = (objects: K8sObject[], kind: string): K8sObject => {
  const found = byKind(objects, kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

/** Each object against its schema: kubernetes-models (core API) and the Prometheus Operator's CRDs. */
async function validateObject(o: K8sObject): Promise<void> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const file =
    group === 'monitoring.coreos.com'
      ? join(MODELS, '@kubernetes-models/prometheus-operator/monitoring.coreos.com', version!, `${o.kind}.js`)
      : join(MODELS, 'kubernetes-models', group ? group : '', version!, `${o.kind}.mjs`);
  expect(existsSync(file), `no schema for ${o.apiVersion} ${o.kind}`).toBe(true);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = mod[o.kind]!;
  expect(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
}

/** Every variable name the service reads (its config schema) or documents (.env.example). */
function serviceVariables(): Set<string> {
  const text =
    readFileSync(join(ROOT, 'src/config/schema.ts'), 'utf8') + readFileSync(join(ROOT, '.env.example'), 'utf8');
  return new Set(text.match(/\b(?:CREDVEND|AWS)_[A-Z0-9_]+\b/g) ?? []);
}

describe('helm chart', () => {
  beforeAll(async () => {
    const build = await run('bash', [join(ROOT, 'scripts/helm/build.sh')], { timeoutMs: 180_000 });
    if (build.code !== 0) {
      skipReason = `the chart renderer could not be built (golang-go, golang-github-masterminds-sprig-dev, golang-github-xeipuuv-gojsonschema-dev, golang-k8s-sigs-yaml-dev: scripts/install-test-deps.sh): ${build.stderr.trim().split('\n').slice(-1)[0] ?? ''}`;
      console.log(`SKIPPED ${SUITE}: ${skipReason}`);
      return;
    }
    renderer = build.stdout.trim().split('\n').pop() ?? '';
    for (const pkg of ['kubernetes-models', '@kubernetes-models/prometheus-operator'])
      expect(existsSync(join(MODELS, pkg, 'package.json')), `${pkg} is a devDependency: run npm ci`).toBe(true);
    dir = tempRoot('cv-helm-');
  }, 300_000);

  afterAll(() => {
    if (dir) removeTempRoot(dir);
  });

  it('refuses to render without a profiles file, and refuses values outside values.schema.json', async (ctx) => {
    if (skipReason) return ctx.skip();
    const bare = await render([]);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toContain('profiles (the profiles file as YAML) or existingProfilesConfigMap is required');

    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      stringify({
        securityContext: { readOnlyRootFilesystem: false, capabilities: { drop: ['ALL'] } },
        replicas: 3,
        image: { digest: 'latest' },
      }),
    );
    const refused = await render([join(CHART, 'ci/minimal-values.yaml'), bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("values don't meet the specifications of the schema");
    expect(refused.stderr).toContain('securityContext.readOnlyRootFilesystem');
    expect(refused.stderr).toContain('Additional property replicas is not allowed');
    expect(refused.stderr).toContain('image.digest');

    const both = join(dir, 'both.yaml');
    writeFileSync(both, stringify({ aws: { podIdentity: { enabled: true } } }));
    const conflict = await render([join(CHART, 'ci/minimal-values.yaml'), both]);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain('exclude each other');
  });

  for (const variant of ['minimal', 'all-features'] as const) {
    it(`renders ${variant} values into valid objects with restricted pod security`, async (ctx) => {
      if (skipReason) return ctx.skip();
      // Act
      const out = await render([join(CHART, `ci/${variant}-values.yaml`)]);
      expect(out.code, out.stderr).toBe(0);
      writeFileSync(join(dir, `${variant}.yaml`), out.text);

      // Assess: the set of objects, each valid against its schema
      const kinds = out.objects.map((o) => o.kind).sort();
      const expected = [
        'ConfigMap',
        'Deployment',
        'HorizontalPodAutoscaler',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'Service',
        'ServiceAccount',
      ];
      expect(kinds).toEqual(
        variant === 'minimal' ? expected : [...expected, 'PrometheusRule', 'ServiceMonitor'].sort(),
      );
      for (const o of out.objects) await validateObject(o);

      const deploy = one(out.objects, 'Deployment');
      const pod = deploy.spec.template.spec;
      const [c] = pod.containers;
      // Restricted Pod Security Standard, field by field
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 10001,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.securityContext.capabilities.add).toBeUndefined();
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(c.resources.requests).toBeDefined();
      expect(c.resources.limits.memory).toBeDefined();
      expect(pod.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey)).toEqual([
        'topology.kubernetes.io/zone',
        'kubernetes.io/hostname',
      ]);
      expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
        Number(c.env.find((e: { name: string }) => e.name === 'CREDVEND_SHUTDOWN_GRACE_MS').value),
      );

      // Env variables: only ones the service reads or documents
      const known = serviceVariables();
      const names: string[] = c.env.map((e: { name: string }) => e.name);
      expect(names.filter((n) => !known.has(n))).toEqual([]);
      const env = Object.fromEntries(
        c.env
          .filter((e: { value?: string }) => e.value !== undefined)
          .map((e: { name: string; value: string }) => [e.name, e.value]),
      );
      // Ports: the container ports are the listeners the env configures; the Service targets them by name
      const ports = Object.fromEntries(
        c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
      );
      expect(String(ports.http)).toBe(env.CREDVEND_PORT);
      expect(String(ports.admin)).toBe(env.CREDVEND_ADMIN_PORT);
      const svc = one(out.objects, 'Service');
      expect(svc.spec.ports.map((p: { targetPort: string }) => p.targetPort)).toEqual(['http', 'admin']);
      expect(svc.spec.selector).toEqual(deploy.spec.selector.matchLabels);
      // Probes: on the admin port, on /healthz and /readyz (sent to a real credvend in the last test)
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'])
        expect(c[probe].httpGet.port, probe).toBe('admin');
      expect(c.readinessProbe.httpGet.path).toBe('/readyz');
      expect(c.livenessProbe.httpGet.path).toBe('/healthz');

      // The profiles ConfigMap is mounted where CREDVEND_CONFIG_FILE points and is a valid profiles file
      const cm = one(out.objects, 'ConfigMap');
      expect(pod.volumes.find((v: { name: string }) => v.name === 'profiles').configMap.name).toBe(cm.metadata.name);
      expect(c.volumeMounts.find((m: { name: string }) => m.name === 'profiles').mountPath + '/profiles.yaml').toBe(
        env.CREDVEND_CONFIG_FILE,
      );
      const profilesFile = join(dir, `${variant}-profiles.yaml`);
      writeFileSync(profilesFile, cm.data!['profiles.yaml']!);
      await ensureBuilt();
      const check = spawnSync(process.execPath, [join(ROOT, 'dist/server.js'), '--check-config'], {
        env: { PATH: process.env.PATH, ...env, CREDVEND_CONFIG_FILE: profilesFile },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(check.status, check.stderr).toBe(0);

      // Identity: IRSA annotation or Pod Identity egress, never both
      const sa = one(out.objects, 'ServiceAccount');
      expect(pod.serviceAccountName).toBe(sa.metadata.name);
      const egress = JSON.stringify(one(out.objects, 'NetworkPolicy').spec.egress);
      if (variant === 'minimal') {
        expect(sa.metadata.annotations?.['eks.amazonaws.com/role-arn']).toBe(
          'arn:aws:iam::123456789012:role/credvend-service',
        );
        expect(egress).not.toContain('169.254.170.23');
      } else {
        expect(sa.metadata.annotations?.['eks.amazonaws.com/role-arn']).toBeUndefined();
        expect(egress).toContain('169.254.170.23/32');
        expect(egress).toContain('6379'); // the shared rate-limit Redis
        expect(c.image).toMatch(/@sha256:[a-f0-9]{64}$/);
        const rule = one(out.objects, 'PrometheusRule');
        expect(rule.spec).toEqual(parse(readFileSync(join(ROOT, 'ops/prometheus/alerts.yml'), 'utf8')));
        const monitor = one(out.objects, 'ServiceMonitor');
        expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'admin', path: '/metrics' });
        if (spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0) {
          const rulesFile = join(dir, 'prometheusrule-spec.yml');
          writeFileSync(rulesFile, stringify(rule.spec));
          const promtool = spawnSync('promtool', ['check', 'rules', rulesFile], { encoding: 'utf8', timeout: 30_000 });
          expect(promtool.status, promtool.stdout + promtool.stderr).toBe(0);
        }
      }
      // HPA and PDB point at this Deployment's pods
      expect(one(out.objects, 'HorizontalPodAutoscaler').spec.scaleTargetRef).toEqual({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: deploy.metadata.name,
      });
      expect(one(out.objects, 'PodDisruptionBudget').spec.selector.matchLabels).toEqual(
        deploy.spec.selector.matchLabels,
      );
      expect(deploy.spec.replicas).toBeUndefined(); // the HPA owns the replica count
    });
  }

  it('rolls the pods when the profiles change (checksum annotation), and the chart carries ops/prometheus/alerts.yml unchanged', async (ctx) => {
    if (skipReason) return ctx.skip();
    const a = await render([join(CHART, 'ci/minimal-values.yaml')]);
    const changed = join(dir, 'changed.yaml');
    const values = parse(readFileSync(join(CHART, 'ci/minimal-values.yaml'), 'utf8')) as {
      profiles: { profiles: Record<string, { maxKeys?: number }> };
    };
    values.profiles.profiles['ci-artifacts']!.maxKeys = 3;
    writeFileSync(changed, stringify(values));
    const b = await render([changed]);
    const checksum = (o: K8sObject[]) =>
      one(o, 'Deployment').spec.template.metadata.annotations['checksum/profiles'] as string;
    expect(checksum(a.objects)).toMatch(/^[a-f0-9]{64}$/);
    expect(checksum(b.objects)).not.toBe(checksum(a.objects));
    expect(readFileSync(join(CHART, 'files/alerts.yml'), 'utf8')).toBe(
      readFileSync(join(ROOT, 'ops/prometheus/alerts.yml'), 'utf8'),
    );
  });

  it("the rendered probe paths answer 200 on a running credvend's admin port", async (ctx) => {
    if (skipReason) return ctx.skip();
    const out = await render([join(CHART, 'ci/minimal-values.yaml')]);
    const c = one(out.objects, 'Deployment').spec.template.spec.containers[0];
    const paths = [
      ...new Set(['startupProbe', 'readinessProbe', 'livenessProbe'].map((p) => c[p].httpGet.path as string)),
    ];
    await ensureBuilt();
    const container: ContainerStub = await startContainerStub();
    const sts: StsStub = await startStsStub({ baseCredentials: container });
    const issuer: Issuer = await startIssuer();
    try {
      const svc = await startService({ dir, name: 'probes', sts, container, issuer });
      for (const p of paths) expect((await adminGet(svc, p)).status, p).toBe(200);
      // and not on some other port: the API listener has no /metrics (admin only by default)
      expect((await fetch(`${svc.url}/metrics`)).status).toBe(404);
      expect(await svc.stop()).toBe(0);
    } finally {
      await issuer.close();
      await sts.close();
      await container.close();
    }
  });
});
