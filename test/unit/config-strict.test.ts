// Strict configuration: what an attacker who can influence the profiles file, or a careless
// operator, could slip past loadConfig. Each test names the attack or mistake it stops.
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readConfigFile } from '../../src/config/file.js';
import { ConfigError, loadConfig, MAX_FILE_VALUES, MAX_LISTED_PROBLEMS, type Config } from '../../src/config/load.js';
import { MAX_ISSUERS, MAX_PROFILES } from '../../src/config/schema.js';
import { MAX_YAML_DEPTH } from '../../src/config/yaml.js';
import {
  CONFIG_ISSUER as ISSUER,
  CONFIG_ROLE as ROLE,
  configProfile as profile,
  problemsOf,
} from '../helpers/config.js';

function loadText(text: string, fileName = '/etc/credvend/profiles.json', env: Record<string, string> = {}): Config {
  return loadConfig({ CREDVEND_CONFIG_FILE: fileName, ...env }, () => text);
}

function loadFile(file: unknown): Config {
  return loadText(JSON.stringify(file));
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('prefix templates obey the request-key rules in their static text', () => {
  const rows: Array<[name: string, prefix: string, expected: string, threat: string]> = [
    [
      'star',
      'uploads/*/{sub}/',
      "must not contain '*', '?' or '$' outside placeholders",
      'a * reaches STS as ${*}, which Ceph RGW reads as a wildcard: every tenant',
    ],
    [
      'question',
      'uploads/?/{sub}/',
      "must not contain '*', '?' or '$' outside placeholders",
      'a ? is a one-character IAM wildcard',
    ],
    [
      'policyVariable',
      'home/${aws:username}/',
      "must not contain '*', '?' or '$' outside placeholders",
      '${aws:username} is an IAM policy variable, not our template',
    ],
    [
      'dollar',
      'cost$/{sub}/',
      "must not contain '*', '?' or '$' outside placeholders",
      'a $ is escaped as ${$}: RGW does not honour the escape',
    ],
    [
      'dotDot',
      'uploads/{sub}/../',
      "must not contain '.' or '..' segments",
      '.. reaches the policy and the returned key: another tenant once normalised',
    ],
    [
      'dot',
      './uploads/{sub}/',
      "must not contain '.' or '..' segments",
      'a . segment is dropped by clients that normalise paths',
    ],
    [
      'doubleSlash',
      'uploads//{sub}/',
      "must not contain '//'",
      'an empty segment is where an empty claim would have put everyone',
    ],
    ['leadingSlash', '/uploads/{sub}/', "must not start with '/'", 'a key with a leading / is a different object'],
    [
      'control',
      'uploads\u0007/{sub}/',
      'must not contain control characters',
      'invisible in logs: spoofed audit records',
    ],
    [
      'loneSurrogate',
      'uploads\ud800/{sub}/',
      'must be valid Unicode',
      'S3 would store another name than the one granted',
    ],
  ];

  it.each(rows)('refuses %s static text (%s)', (name, prefix, expected) => {
    // Prepare
    const file = { issuers: [ISSUER], profiles: { [name]: profile({ prefix }) } };
    // Act
    const problems = problemsOf(() => loadFile(file));
    // Assess
    expect(
      problems.some((p) => p.startsWith(`profiles.${name}.prefix: ${expected}`)),
      problems.join('\n'),
    ).toBe(true);
  });

  it('refuses placeholders that name no claim ({..}, {.}, {a.}, {a..b})', () => {
    // Attack: `{..}` matched the placeholder pattern, so a prefix read "uploads/{..}/" in review
    // and looked like a path trick; it names no claim at all.
    const profiles = Object.fromEntries(
      ['{..}', '{.}', '{a.}', '{.a}', '{a..b}'].map((ph, i) => [`p${i}`, profile({ prefix: `uploads/${ph}/` })]),
    );
    const problems = problemsOf(() => loadFile({ issuers: [ISSUER], profiles }));
    for (let i = 0; i < 5; i++)
      expect(
        problems.some((p) => p.startsWith(`profiles.p${i}.prefix: template`) && p.includes('is not a claim name')),
      ).toBe(true);
  });

  it('still accepts claim placeholders with dots, dashes and colons, and safe static text', () => {
    // Kubernetes and GitLab claims: dotted paths, dashes; static text with '.', '=', '@', '~'.
    const file = {
      issuers: [ISSUER],
      profiles: {
        k8s: profile({ prefix: 'ns/{kubernetes.io.namespace}/sa-{sub}/' }),
        gitlab: profile({ prefix: 'v1.2/project=x/{project_path}/{ref-name}/' }),
        flat: profile({ prefix: '' }),
      },
    };
    const config = loadFile(file);
    expect(config.profiles.get('k8s')?.prefix).toBe('ns/{kubernetes.io.namespace}/sa-{sub}/');
    expect(config.profiles.get('gitlab')?.prefix).toBe('v1.2/project=x/{project_path}/{ref-name}/');
  });
});

describe('duplicate keys', () => {
  it('refuses a duplicate profile in a .json file (last-wins would replace the reviewed one)', () => {
    // Mistake/attack: a second "uploads" further down the file silently replaced the first, so the
    // profile in force was not the one reviewed (e.g. another roleArn).
    // Prepare
    const text = `{
  "issuers": [{"issuer": "https://gitlab.example.com", "audiences": ["credvend"], "jwksUri": "https://gitlab.example.com/jwks"}],
  "profiles": {
    "uploads": {"roleArn": "${ROLE}", "bucket": "tenant-bucket", "region": "eu-west-1", "match": {}},
    "uploads": {"roleArn": "arn:aws:iam::123456789012:role/admin", "bucket": "tenant-bucket", "region": "eu-west-1", "match": {}}
  }
}`;
    // Act
    const problems = problemsOf(() => loadText(text));
    // Assess
    expect(problems).toEqual([
      '/etc/credvend/profiles.json: cannot be read or parsed (duplicate key "uploads" in profiles at line 5, column 5)',
    ]);
  });

  it('refuses duplicate members however they are spelled (escapes), at any depth, in arrays too', () => {
    // "\u0072oleArn" is "roleArn" to JSON.parse: a textual comparison would miss it.
    const text =
      '{"issuers": [], "profiles": {"p": {"match": {"claims": {"a": "1"}}, "roleArn": "x", "\\u0072oleArn": "y"}}}';
    expect(problemsOf(() => loadText(text))[0]).toContain('duplicate key "roleArn" in profiles.p at line 1');
    const inArray = '{"issuers": [{"issuer": "a"}, {"issuer": "b", "issuer": "c"}]}';
    expect(problemsOf(() => loadText(inArray))[0]).toContain('duplicate key "issuer" in issuers.1 at line 1');
  });

  it('does not take a string value or a key inside a string for a duplicate key', () => {
    const text = JSON.stringify({
      issuers: [ISSUER],
      profiles: { p: profile({ description: 'p", "p": {', sessionTags: { p: '{sub}' } }) },
    });
    expect(loadText(text).profiles.get('p')?.description).toBe('p", "p": {');
  });

  it('refuses duplicate keys in YAML too', () => {
    const yaml = 'issuers: []\nprofiles:\n  a: {}\n  a: {}\n';
    expect(problemsOf(() => loadText(yaml, '/etc/credvend/profiles.yaml'))[0]).toMatch(
      /profiles\.yaml: cannot be read or parsed \(Map keys must be unique/,
    );
  });

  it('refuses duplicate YAML keys however they are spelled, at any depth, in flow mappings and lists too', () => {
    // Attack/mistake: a second spelling of a profile or a field (quoted, flow style, nested in a
    // list) silently replacing the reviewed one, as last-wins parsing would.
    const cases: [string, string][] = [
      ['issuers: []\nprofiles:\n  a: {}\n  "a": {}\n', '"a" at line 4, column 3'],
      ["issuers: []\nprofiles: {a: {}, 'a': {}}\n", '"a" at line 2'],
      [
        'issuers: []\nprofiles:\n  p:\n    roleArn: x\n    bucket: b\n    roleArn: y\n',
        '"roleArn" at line 6, column 5',
      ],
      ['issuers:\n  - issuer: a\n    issuer: b\nprofiles: {}\n', '"issuer" at line 3, column 5'],
    ];
    for (const [yaml, where] of cases)
      expect(problemsOf(() => loadText(yaml, '/etc/credvend/profiles.yaml'))[0]).toContain(
        `cannot be read or parsed (Map keys must be unique: ${where}`,
      );
  });

  it('finds a duplicate among tens of thousands of YAML keys, and takes keys that only look alike as distinct', () => {
    // Mistake: the duplicate hidden at the end of a long file. The check is a set per mapping:
    // the yaml library's own (`uniqueKeys`) compares every pair, 11 s for 40,000 keys.
    const keys = Array.from({ length: 40_000 }, (_, i) => `  p${i}: {}`);
    const long = `issuers: []\nprofiles:\n${keys.join('\n')}\n  p17: {}\n`;
    expect(problemsOf(() => loadText(long, '/etc/credvend/profiles.yaml'))[0]).toContain(
      'Map keys must be unique: "p17" at line 40003, column 3',
    );
    // Distinct keys: a string and a number, different case, a trailing space inside quotes.
    const distinct = 'issuers: []\nprofiles: {}\nx:\n  "1": a\n  1: b\n  A: c\n  a: d\n  "a ": e\n';
    expect(() => loadText(distinct, '/etc/credvend/profiles.yaml')).not.toThrow(/Map keys must be unique/);
  });

  it('refuses the same issuer listed twice (which keys verify would depend on lookup order)', () => {
    // Mistake: an operator removes a compromised key from one entry while a second entry for the
    // same issuer keeps trusting it.
    // Prepare
    const other = {
      issuer: ISSUER.issuer,
      audiences: ['credvend'],
      publicKey: '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----',
    };
    // Act: also with an unrelated problem, so the check runs in the same pass.
    const problems = problemsOf(() =>
      loadFile({ issuers: [ISSUER, other], profiles: { p: profile({ bucket: 'BAD' }) } }),
    );
    // Assess
    expect(problems).toContain(
      'issuers.1.issuer: "https://gitlab.example.com" is already listed at issuers.0: one entry per issuer',
    );
    expect(problems.some((p) => p.startsWith('profiles.p.bucket:'))).toBe(true);
  });
});

describe('names never touch an object prototype', () => {
  it('refuses a profile named __proto__ instead of dropping it silently', () => {
    // JSON.parse keeps "__proto__" as an own key; a plain-object map dropped it without a word.
    const text = `{"issuers": [${JSON.stringify(ISSUER)}], "profiles": {"__proto__": ${JSON.stringify(profile())}, "ok": ${JSON.stringify(profile())}}}`;
    expect(problemsOf(() => loadText(text))).toEqual([
      'profiles.__proto__: profile names are 1-64 characters of [A-Za-z0-9_-], starting with a letter',
    ]);
    const yaml = `issuers: [${JSON.stringify(ISSUER)}]\nprofiles:\n  __proto__: ${JSON.stringify(profile())}\n`;
    expect(problemsOf(() => loadText(yaml, 'p.yaml'))).toContain(
      'profiles.__proto__: profile names are 1-64 characters of [A-Za-z0-9_-], starting with a letter',
    );
  });

  it('refuses constructor and prototype, and names that are not plain identifiers', () => {
    const profiles = Object.fromEntries(
      ['constructor', 'prototype', '1st', 'a.b', 'a b', 'x'.repeat(65), ''].map((n) => [n, profile()]),
    );
    const problems = problemsOf(() => loadFile({ issuers: [ISSUER], profiles }));
    expect(problems).toContain('profiles.constructor: constructor and prototype are reserved names');
    expect(problems).toContain('profiles.prototype: constructor and prototype are reserved names');
    for (const n of ['1st', 'a.b', 'a b', 'x'.repeat(65)])
      expect(problems).toContain(
        `profiles.${n}: profile names are 1-64 characters of [A-Za-z0-9_-], starting with a letter`,
      );
    expect(problems).toContain('profiles: profile names are 1-64 characters of [A-Za-z0-9_-], starting with a letter'); // the empty name
  });

  it('refuses a claim condition named __proto__ (dropped, it would widen who matches)', () => {
    // Attack/mistake: `claims: {__proto__: admins}` vanished in parsing, so the profile matched
    // every subject of the issuer instead of the admins only.
    const text = `{"issuers": [${JSON.stringify(ISSUER)}], "profiles": {"p": ${JSON.stringify(profile({ match: { iss: ISSUER.issuer, claims: { groups: 'x' } } })).replace('"groups"', '"__proto__"')}}}`;
    expect(problemsOf(() => loadText(text))).toEqual([
      'profiles.p.match.claims.__proto__: __proto__ is not allowed as a name',
    ]);
  });

  it('keeps profiles in a Map and claim conditions as own properties', () => {
    const config = loadFile({
      issuers: [ISSUER],
      profiles: { toString: profile({ match: { claims: { hasOwnProperty: 'x' } } }) },
    });
    expect(config.profiles).toBeInstanceOf(Map);
    expect(Object.keys(config.profiles.get('toString')?.match.claims ?? {})).toEqual(['hasOwnProperty']);
  });
});

describe('bounded cost: size, counts, problem list', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'credvend-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a file over 1 MiB by its size, before reading it', () => {
    // Attack/mistake: 50 MB of YAML took 7.7 s and 1.8 GB to accept; 50 MB of junk was a V8 OOM.
    // Prepare: a sparse 50 MB file (nothing written; reading it would still cost 50 MB).
    const path = join(dir, 'huge.yaml');
    writeFileSync(path, '');
    truncateSync(path, 50 * 1024 * 1024);
    // Act
    const started = Date.now();
    const problems = problemsOf(() => loadConfig({ CREDVEND_CONFIG_FILE: path }));
    // Assess
    expect(problems).toEqual([
      `${path}: is 52428800 bytes, over the limit of 1 MiB (set by CREDVEND_CONFIG_MAX_BYTES)`,
    ]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('reads a file within the cap, and the cap can be changed', () => {
    const path = join(dir, 'profiles.json');
    writeFileSync(
      path,
      JSON.stringify({ issuers: [ISSUER], profiles: { p: profile({ description: 'x'.repeat(2000) }) } }),
    );
    expect(loadConfig({ CREDVEND_CONFIG_FILE: path }).profiles.size).toBe(1);
    expect(problemsOf(() => loadConfig({ CREDVEND_CONFIG_FILE: path, CREDVEND_CONFIG_MAX_BYTES: '1024' }))[0]).toMatch(
      /over the limit of 1024 bytes/,
    );
  });

  it('refuses something that is not a regular file (a FIFO or /dev/zero would never end)', () => {
    expect(() => readConfigFile('/dev/zero', 1024)).toThrow('not a regular file');
    expect(problemsOf(() => loadConfig({ CREDVEND_CONFIG_FILE: dir }))[0]).toBe(
      `${dir}: cannot be read or parsed (not a regular file)`,
    );
  });

  it('bounds a reader that ignores the cap: the text is measured before parsing', () => {
    const problems = problemsOf(() => loadText(`# ${'x'.repeat(2 * 1024 * 1024)}\n`, 'p.yaml'));
    expect(problems).toEqual([
      `p.yaml: is ${2 * 1024 * 1024 + 3} bytes, over the limit of 1 MiB (set by CREDVEND_CONFIG_MAX_BYTES)`,
    ]);
  });

  it('reports a bad CREDVEND_CONFIG_MAX_BYTES with the other problems and keeps the default cap', () => {
    const problems = problemsOf(() =>
      loadText(JSON.stringify({ issuers: [ISSUER], profiles: { p: profile({ bucket: 'BAD' }) } }), 'p.json', {
        CREDVEND_CONFIG_MAX_BYTES: '999999999999',
      }),
    );
    expect(problems.some((p) => p.startsWith('env.CREDVEND_CONFIG_MAX_BYTES:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('profiles.p.bucket:'))).toBe(true);
  });

  it('answers 40,000 invalid profiles with one problem, never a stack overflow', () => {
    // Attack/mistake: 40,000 invalid profiles ended in "Maximum call stack size exceeded" (exit 1).
    const profiles = Object.fromEntries(Array.from({ length: 40_000 }, (_, i) => [`p${i}`, {}]));
    const started = Date.now();
    const problems = problemsOf(() => loadFile({ issuers: [ISSUER], profiles }));
    expect(problems).toEqual([`profiles: at most ${MAX_PROFILES} profiles`]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('counts issuers before validating them', () => {
    const issuers = Array.from({ length: 10_000 }, () => ({ bogus: true }));
    expect(problemsOf(() => loadFile({ issuers, profiles: { p: profile() } }))).toEqual([
      `issuers: at most ${MAX_ISSUERS} trusted issuers`,
    ]);
  });

  it('answers 200,000 list items with one problem, never a stack overflow', () => {
    // Attack/mistake: 200,000 bad managed-policy ARNs in one profile (a 1 MiB file) made zod's
    // issue merging overflow the stack.
    const text = JSON.stringify({
      issuers: [ISSUER],
      profiles: { p: profile({ sessionPolicyArns: Array.from({ length: 200_000 }, () => 'x') }) },
    });
    expect(text.length).toBeLessThan(1024 * 1024);
    expect(problemsOf(() => loadText(text))).toEqual([
      `/etc/credvend/profiles.json: holds more than ${MAX_FILE_VALUES} values (fields and list items); nothing in it was validated`,
    ]);
  });

  it('refuses deep YAML nesting before the parser recurses (an overflow there can abort V8)', () => {
    // Attack: 10,000 `[` (20 KB) overflowed the yaml composer's stack; the second such parse in one
    // process died in V8's regexp compiler ("out of memory"), an abort no catch can handle.
    for (const deep of [
      '['.repeat(400_000),
      `${'- '.repeat(10_000)}x\n`,
      `${'{a: '.repeat(10_000)}1${'}'.repeat(10_000)}`,
      `a:\n${' '.repeat(200)}b: 1\n`,
    ]) {
      expect(problemsOf(() => loadText(deep, 'p.yaml'))).toEqual([
        `p.yaml: cannot be read or parsed (nested deeper than ${MAX_YAML_DEPTH} levels)`,
      ]);
    }
  });

  it('still reads ordinary YAML: block scalars with deep indentation, flow collections, anchors', () => {
    const yaml = [
      'issuers:',
      `  - ${JSON.stringify(ISSUER)}`,
      'profiles:',
      '  p:',
      '    description: |',
      `      ${' '.repeat(300)}indented text`,
      '    roleArn: &role ' + ROLE,
      '    bucket: tenant-bucket',
      '    region: eu-west-1',
      "    prefix: 'uploads/{sub}/'",
      '    match: { iss: [https://gitlab.example.com], claims: { groups: [a, b] } }',
      '  q: { roleArn: *role, bucket: tenant-bucket, region: eu-west-1, match: {} }',
    ].join('\n');
    expect([...loadText(yaml, 'p.yaml').profiles.keys()]).toEqual(['p', 'q']);
    // JSON on one line is YAML too: its thousands of `:` nest nothing.
    const oneLine = JSON.stringify({
      issuers: [ISSUER],
      profiles: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`p${i}`, profile()])),
    });
    expect(loadText(oneLine, 'p.yaml').profiles.size).toBe(500);
  });

  it('keeps a JSON file nested 400,000 deep to one problem (JSON.parse and the scan are iterative)', () => {
    const deepJson = `${'['.repeat(400_000)}${']'.repeat(400_000)}`;
    expect(problemsOf(() => loadText(deepJson))).toEqual([
      `/etc/credvend/profiles.json: holds more than ${MAX_FILE_VALUES} values (fields and list items); nothing in it was validated`,
    ]);
  });

  it(`lists the first ${MAX_LISTED_PROBLEMS} problems and counts the rest`, () => {
    // Mistake: thousands of problem lines scroll the first (usually the cause) out of sight, and a
    // long list on a pipe was cut mid-line at exit.
    // Prepare: 1000 empty profiles, 4 problems each.
    const profiles = Object.fromEntries(Array.from({ length: MAX_PROFILES }, (_, i) => [`p${i}`, {}]));
    // Act
    const err = errorOf(() => loadFile({ issuers: [ISSUER], profiles }));
    // Assess: every problem kept for code, the message bounded.
    expect(err.problems).toHaveLength(4 * MAX_PROFILES);
    const lines = err.message.split('\n');
    expect(lines[0]).toBe(`invalid configuration (${4 * MAX_PROFILES} problems):`);
    expect(lines).toHaveLength(1 + MAX_LISTED_PROBLEMS + 1);
    expect(lines.at(-1)).toBe(`  … and ${4 * MAX_PROFILES - MAX_LISTED_PROBLEMS} more`);
  });

  it('shows each problem on one bounded line (a name can hold a newline or a megabyte)', () => {
    // Mistake/attack: a key with a newline faked another problem line; a huge key flooded stderr.
    const profiles = { [`a\n  - profiles.ok: fine${'x'.repeat(5000)}`]: profile() };
    const err = errorOf(() => loadFile({ issuers: [ISSUER], profiles }));
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]?.length).toBeLessThan(320);
    expect(lines[1]).toContain('profiles.a\\u000a  - profiles.ok');
  });
});

describe('delivery rules of a profile', () => {
  it('refuses maxObjectBytes on a credentials profile', () => {
    // Attack stopped: an operator believing uploads are size-capped on a profile that hands out
    // credentials, which no size cap binds (only a presigned POST policy can).
    const problems = problemsOf(() =>
      loadFile({ issuers: [ISSUER], profiles: { p: profile({ maxObjectBytes: 1024 }) } }),
    );
    expect(problems).toEqual([expect.stringMatching(/maxObjectBytes.*needs delivery: presigned/)]);
    expect(
      loadFile({
        issuers: [ISSUER],
        profiles: { p: profile({ delivery: 'presigned', maxObjectBytes: 1024 }) },
      }).profiles.get('p')?.maxObjectBytes,
    ).toBe(1024);
  });

  it('refuses reuse on a presigned profile', () => {
    // What it stops: a reuse setting that would look like it bounds how long a presigned
    // profile's signing session is shared, when presigned mode ignores it.
    const problems = problemsOf(() =>
      loadFile({
        issuers: [ISSUER],
        profiles: { p: profile({ delivery: 'presigned', reuse: { minRemainingSeconds: 300 } }) },
      }),
    );
    expect(problems).toEqual([expect.stringMatching(/reuse.*applies to delivery: credentials/)]);
  });
});
