// The CI examples (examples/ci), run for real: the GitLab job's and the GitHub workflow step's
// script lines, as the files hold them, in bash with curl and the real AWS CLI, against the built
// service (with examples/ci/profiles.yaml, pointed at the test RGW and issuer) and Ceph RGW.
// Tokens carry the claims GitLab and GitHub put in their ID tokens.
//
// Lives in the browser project because it is the same kind of test: a delivery example, run by
// the client that users run, against the real service.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  BUCKET,
  cleanEnv,
  ensureBuilt,
  remember,
  removeTempRoot,
  ROOT,
  run,
  s3Client,
  startIssuer,
  startRgw,
  tempRoot,
  type Issuer,
  type Rgw,
  type RunResult,
} from '../helpers/e2e.js';
import { startService, type Service } from '../helpers/service-process.js';

const GITLAB = 'https://gitlab.example.com';
const GITHUB = 'https://token.actions.githubusercontent.com';
/** A commit per run, so no test sees another's object. */
const newSha = (): string => randomBytes(20).toString('hex');

type Yaml = Record<string, unknown>;
const readYaml = (file: string): Yaml => parseYaml(readFileSync(join(ROOT, 'examples/ci', file), 'utf8')) as Yaml;

let root: string;
let rgw: Rgw;
let issuer: Issuer;
let svc: Service;
let admin: S3Client;
let artifact: Buffer;

beforeAll(async () => {
  root = tempRoot('cv-ci-');
  const started = await Promise.allSettled([
    ensureBuilt(),
    startRgw(root, [BUCKET]).then((r) => (rgw = r)),
    startIssuer().then((i) => (issuer = i)),
  ]);
  for (const r of started) if (r.status === 'rejected') throw r.reason;
  svc = await startService({ dir: root, rgw, issuer, name: 'svc', profiles: exampleProfiles() });
  admin = s3Client(rgw, { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey });
  artifact = randomBytes(64 * 1024);
});

afterAll(async () => {
  await svc?.stop();
  await Promise.allSettled([rgw?.stop(), issuer?.close()]);
  if (root) removeTempRoot(root);
});

/** examples/ci/profiles.yaml as published, but trusting the test issuer's keys and using the test RGW. */
function exampleProfiles(): Yaml {
  const file = readYaml('profiles.yaml') as { issuers: Yaml[]; profiles: Record<string, Yaml> };
  for (const i of file.issuers) {
    delete i.discovery;
    i.jwksUri = issuer.jwksUri; // both identity providers sign with the test issuer's keys
  }
  for (const p of Object.values(file.profiles))
    Object.assign(p, { roleArn: rgw.roleArn, bucket: BUCKET, region: rgw.region });
  return file;
}

// ---------------------------------------------------------------------------------------------

/** A job's script lines with GitLab's `extends` resolved. */
function gitlabJob(name: string): { script: string[]; environment: string; idTokenAud: string } {
  const ci = readYaml('gitlab-ci.yml');
  const job = ci[name] as Yaml;
  const merged = { ...(typeof job.extends === 'string' ? (ci[job.extends] as Yaml) : {}), ...job };
  const idTokens = merged.id_tokens as Record<string, { aud: string }>;
  return {
    script: merged.script as string[],
    environment: String(merged.environment),
    idTokenAud: idTokens.CREDVEND_ID_TOKEN!.aud,
  };
}

/**
 * The claims GitLab puts in a job's ID token (docs: "ID token authentication"), for project
 * my-group/app. String-typed booleans, as GitLab sends them.
 */
function gitlabClaims(ref: string, isProtected: boolean, environment: string): Record<string, string> {
  return {
    sub: `project_path:my-group/app:ref_type:branch:ref:${ref}`,
    namespace_id: '42',
    namespace_path: 'my-group',
    project_id: '4242',
    project_path: 'my-group/app',
    user_id: '7',
    user_login: 'alice',
    user_email: 'alice@example.com',
    pipeline_id: '1001',
    pipeline_source: 'push',
    job_id: '50001',
    ref,
    ref_type: 'branch',
    ref_path: `refs/heads/${ref}`,
    ref_protected: String(isProtected),
    environment,
    environment_protected: String(isProtected),
    deployment_tier: environment,
  };
}

/** Points the real AWS CLI at RGW without touching the job's lines; records what must stay secret. */
const PRELUDE = `aws() { command aws --endpoint-url "$S3_ENDPOINT" "$@"; }
trap 'printf "%s\\n%s\\n" "\${AWS_SECRET_ACCESS_KEY:-}" "\${AWS_SESSION_TOKEN:-}" > "$SEEN"' EXIT
`;

async function runScript(
  name: string,
  lines: string[],
  env: Record<string, string>,
): Promise<RunResult & { secrets: string[] }> {
  const dir = join(root, 'jobs', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'build.tar.gz'), artifact); // the `build` job's artifact
  const seen = join(dir, '.seen');
  // GitLab runs a job's lines in one bash with errexit and pipefail.
  const out = await run('bash', ['-eo', 'pipefail', '-c', PRELUDE + lines.join('\n')], {
    cwd: dir,
    timeoutMs: 60_000,
    env: cleanEnv({
      ...env,
      S3_ENDPOINT: rgw.endpoint,
      SEEN: seen,
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required', // RGW 16 refuses the CLI's checksum trailers
      AWS_PAGER: '',
    }),
  });
  const secrets = existsSync(seen) ? readFileSync(seen, 'utf8').split('\n').filter(Boolean) : [];
  remember(...secrets);
  return { ...out, secrets };
}

async function runGitlabJob(name: string, claims: Record<string, string>, sha: string) {
  const job = gitlabJob(name);
  const token = await issuer.sign(claims, { issuer: GITLAB, audience: job.idTokenAud });
  const out = await runScript(name, job.script, {
    CREDVEND_URL: svc.url, // a project CI/CD variable overrides the file's `variables`
    CREDVEND_ID_TOKEN: token,
    CI_ENVIRONMENT_NAME: job.environment,
    CI_COMMIT_SHA: sha,
    CI_JOB_NAME: name,
  });
  return { ...out, token };
}

async function objectBytes(key: string): Promise<Buffer> {
  const r = await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

async function absent(key: string): Promise<void> {
  await expect(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject({
    $metadata: { httpStatusCode: 404 },
  });
}

// ---------------------------------------------------------------------------------------------

describe('GitLab CI example (examples/ci/gitlab-ci.yml)', () => {
  it('publish-production on a protected branch: curl gets credentials, the AWS CLI uploads the artifact', async () => {
    const sha = newSha();
    const out = await runGitlabJob('publish-production', gitlabClaims('main', true, 'production'), sha);
    expect(out.code, out.stderr + out.stdout).toBe(0);
    const key = `gitlab/production/my-group~2Fapp/${sha}/build.tar.gz`;
    expect(out.stdout).toContain(`uploading to s3://${BUCKET}/${key}`);
    expect((await objectBytes(key)).equals(artifact)).toBe(true);
    const rec = await svc.waitForAudit(
      (a) => a.event === 'credentials.issued' && a.profile === 'gitlab-artifacts-production',
    );
    expect(rec).toMatchObject({ keys: [key], subject: { sub: 'project_path:my-group/app:ref_type:branch:ref:main' } });
    // The job log shows neither the ID token nor the vended secrets.
    expect(out.secrets).toHaveLength(2);
    for (const s of [out.token, ...out.secrets]) expect(out.stdout + out.stderr).not.toContain(s);
  });

  it('publish-production from an unprotected branch is refused by the production-only profile: the job fails, nothing is written', async () => {
    const sha = newSha();
    const out = await runGitlabJob('publish-production', gitlabClaims('feature-x', false, 'production'), sha);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/credvend refused: \{.*"code":"CV_PROFILE_FORBIDDEN"/);
    expect(out.secrets).toEqual([]); // no credentials were ever in the job's environment
    await absent(`gitlab/production/my-group~2Fapp/${sha}/build.tar.gz`);
    await svc.waitForAudit(
      (a) =>
        a.event === 'credentials.denied' &&
        a.profile === 'gitlab-artifacts-production' &&
        a.errorCode === 'CV_PROFILE_FORBIDDEN',
    );
  });

  it('publish-staging from the same unprotected branch uses the staging profile, under its own prefix', async () => {
    const sha = newSha();
    const out = await runGitlabJob('publish-staging', gitlabClaims('feature-x', false, 'staging'), sha);
    expect(out.code, out.stderr + out.stdout).toBe(0);
    expect((await objectBytes(`gitlab/staging/my-group~2Fapp/${sha}/build.tar.gz`)).equals(artifact)).toBe(true);
  });

  it("a staging token cannot be used for the production profile (the job's environment decides)", async () => {
    const job = gitlabJob('publish-production');
    // A pipeline that deploys to staging but runs the production job's request.
    const token = await issuer.sign(gitlabClaims('main', true, 'staging'), {
      issuer: GITLAB,
      audience: job.idTokenAud,
    });
    const out = await runScript('cross-env', job.script, {
      CREDVEND_URL: svc.url,
      CREDVEND_ID_TOKEN: token,
      CI_ENVIRONMENT_NAME: 'production',
      CI_COMMIT_SHA: newSha(),
    });
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('CV_PROFILE_FORBIDDEN');
  });
});

describe('GitHub Actions example (examples/ci/github-workflow.yml)', () => {
  it('the upload step: ID token from the Actions token service, credentials from credvend, upload with the AWS CLI', async () => {
    const wf = readYaml('github-workflow.yml') as {
      jobs: Record<string, { environment: string; steps: { name?: string; run?: string }[] }>;
    };
    const job = wf.jobs.publish!;
    const step = job.steps.find((s) => s.name === 'Upload with credentials from credvend');
    expect(step?.run).toBeDefined();

    // The Actions token service: bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN, audience as a query parameter.
    const requestToken = randomBytes(16).toString('hex');
    const sha = newSha();
    const audiences: string[] = [];
    const server: Server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.headers.authorization !== `bearer ${requestToken}` || url.pathname !== '/token') {
        res.writeHead(401).end();
        return;
      }
      const audience = url.searchParams.get('audience') ?? '';
      audiences.push(audience);
      const claims = {
        sub: `repo:my-org/app:environment:${job.environment}`,
        repository: 'my-org/app',
        repository_owner: 'my-org',
        ref: 'refs/heads/main',
        ref_type: 'branch',
        environment: job.environment,
        workflow: 'publish',
        actor: 'alice',
        sha,
        event_name: 'push',
      };
      void issuer
        .sign(claims, { issuer: GITHUB, audience })
        .then((value) =>
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count: 1, value })),
        );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const out = await runScript('github', [step!.run!], {
        CREDVEND_URL: svc.url,
        ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${port}/token?api-version=2.0`,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
        GITHUB_SHA: sha,
      });
      expect(out.code, out.stderr + out.stdout).toBe(0);
      expect(audiences).toEqual(['https://github.com/my-org']);
      expect((await objectBytes(`github/production/my-org~2Fapp/${sha}/build.tar.gz`)).equals(artifact)).toBe(true);
      // Secrets reach the log only in ::add-mask:: commands, which the runner consumes.
      const shown = (out.stdout + out.stderr).split('\n').filter((l) => !l.startsWith('::add-mask::'));
      for (const s of out.secrets) expect(shown.join('\n')).not.toContain(s);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
