import { reasonOf } from '../helpers/policy.js';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { PolicyError } from '../../src/policy/errors.js';
import {
  encodeClaimSegment,
  escapeIamWildcards,
  hasIamSpecialChars,
  MAX_KEY_BYTES,
  validateRelativeKey,
} from '../../src/policy/keys.js';
import { fillPrefix, fillSourceIdentity, fillTag } from '../../src/policy/templates.js';

// Each test below is one security rule of the key/claim layer; its comment names the attack.

const PREFIX = 'uploads/alice/';

describe('escapeIamWildcards', () => {
  it('escapes * as ${*}', () => {
    // Attack: key "*" (or "a*") would otherwise grant every object under the prefix.
    // Prepare
    const key = 'reports/*';
    // Act
    const escaped = escapeIamWildcards(key);
    // Assess
    expect(escaped).toBe('reports/${*}');
  });

  it('escapes ? as ${?}', () => {
    // Attack: key "report-?.pdf" would otherwise match report-1.pdf, report-2.pdf, ...
    expect(escapeIamWildcards('report-?.pdf')).toBe('report-${?}.pdf');
  });

  it('escapes $ as ${$}', () => {
    // Attack: a "$" opens a policy variable; "${aws:username}" would be substituted by IAM.
    expect(escapeIamWildcards('a$b')).toBe('a${$}b');
  });

  it('keeps ${aws:username} in a key literal', () => {
    // Attack: a key naming a policy variable would resolve to another value at evaluation time.
    expect(escapeIamWildcards('x/${aws:username}/y')).toBe('x/${$}{aws:username}/y');
  });

  it('escapes each character once (no double escaping), so an already-escaped-looking key stays literal text', () => {
    // Attack: a key that is itself "${*}" must name the 4-character object, not a wildcard; and
    // escaping twice would grant an object other than the one requested.
    // Prepare
    const literal = '${*}';
    // Act
    const once = escapeIamWildcards(literal);
    // Assess
    expect(once).toBe('${$}{${*}}');
    expect(escapeIamWildcards('a*?$')).toBe('a${*}${?}${$}');
    expect(escapeIamWildcards('plain/key.txt')).toBe('plain/key.txt');
  });

  it('keeps astral and other unicode characters intact', () => {
    // Attack: splitting a surrogate pair would grant an object other than the requested one.
    expect(escapeIamWildcards('\u{1F600}*é')).toBe('\u{1F600}${*}é');
  });

  it('hasIamSpecialChars spots *, ? and $ for the reject mode', () => {
    // Attack: S3-compatible servers that match ${*} literally need such keys refused instead.
    expect(['a*', 'a?', 'a$', 'plain'].map(hasIamSpecialChars)).toEqual([true, true, true, false]);
  });
});

describe('validateRelativeKey', () => {
  it('refuses an empty key', () => {
    // Attack: an empty key would grant the prefix "directory" object itself / an ambiguous ARN.
    expect(reasonOf(() => validateRelativeKey('', 'key', PREFIX))).toBe('invalid_key');
  });

  it('counts UTF-8 bytes including the profile prefix against the 1024-byte limit', () => {
    // Attack: a key S3 cannot store (over 1024 UTF-8 bytes) would yield credentials for an
    // object that S3 later refuses, or one that some client truncates into another object.
    // Prepare
    const room = MAX_KEY_BYTES - Buffer.byteLength(PREFIX); // 1010 bytes left for the key
    const euro = '€'; // 3 UTF-8 bytes, 1 UTF-16 unit
    const fits = 'a'.repeat(room - 3) + euro;
    const overByOne = 'a'.repeat(room - 2) + euro;
    // Act / Assess
    expect(Buffer.byteLength(PREFIX + fits)).toBe(1024);
    expect(reasonOf(() => validateRelativeKey(fits, 'key', PREFIX))).toBe('no error');
    expect(reasonOf(() => validateRelativeKey(overByOne, 'key', PREFIX))).toBe('invalid_key');
    expect(reasonOf(() => validateRelativeKey('a'.repeat(room), 'key', PREFIX))).toBe('no error');
    expect(reasonOf(() => validateRelativeKey('a'.repeat(room + 1), 'key', PREFIX))).toBe('invalid_key');
  });

  it('counts bytes, not UTF-16 units, for 4-byte characters', () => {
    // Attack: 256 emoji are 512 UTF-16 units but 1024 bytes; a .length check would let them through.
    // Prepare
    const prefix = 'p/'; // 2 bytes
    const emoji = '\u{1F600}'; // 4 bytes, 2 units
    // Act / Assess
    expect(reasonOf(() => validateRelativeKey(emoji.repeat(255), 'key', prefix))).toBe('no error'); // 1022 bytes
    expect(reasonOf(() => validateRelativeKey(emoji.repeat(256), 'key', prefix))).toBe('invalid_key'); // 1026 bytes
    expect(emoji.repeat(256).length).toBe(512);
  });

  it.each([
    ['NUL', 'a\u0000b'],
    ['TAB', 'a\tb'],
    ['LF', 'a\nb'],
    ['CR', 'a\rb'],
    ['US (last C0)', 'a\u001fb'],
    ['DEL', 'a\u007fb'],
    ['first C1', 'a\u0080b'],
    ['NEL (C1)', 'a\u0085b'],
    ['last C1', 'a\u009fb'],
  ])('refuses control character %s', (_name, key) => {
    // Attack: invisible characters spoof keys in consoles and audit records (log injection).
    expect(reasonOf(() => validateRelativeKey(key, 'key', PREFIX))).toBe('invalid_key');
  });

  it('accepts the first printable characters after the control ranges', () => {
    // Guards the range bounds: U+0020 (space) and U+00A0 (no-break space) are not controls.
    expect(reasonOf(() => validateRelativeKey('a b', 'key', PREFIX))).toBe('no error');
    expect(reasonOf(() => validateRelativeKey('a\u00a0b', 'key', PREFIX))).toBe('no error');
  });

  it.each([
    ['lone high surrogate', 'a\ud800b'],
    ['lone low surrogate', 'a\udc00b'],
    ['high surrogate at the end', 'a\udbff'],
    ['reversed pair', '\ude00\ud83d'],
  ])('refuses a %s', (_name, key) => {
    // Attack: a lone surrogate has no UTF-8 form; S3 would store U+FFFD, an object we never granted.
    expect(reasonOf(() => validateRelativeKey(key, 'key', PREFIX))).toBe('invalid_key');
  });

  it('accepts a valid surrogate pair', () => {
    expect(reasonOf(() => validateRelativeKey('\ud83d\ude00.png', 'key', PREFIX))).toBe('no error');
  });

  it.each(['.', '..', './a', '../a', 'a/.', 'a/..', 'a/./b', 'a/../b', '../../other-tenant/x'])(
    "refuses the '.'/'..' segment in %j",
    (key) => {
      // Attack: clients and proxies that normalise paths turn "a/../../bob/x" into another tenant's key.
      expect(reasonOf(() => validateRelativeKey(key, 'key', PREFIX))).toBe('invalid_key');
    },
  );

  it.each(['...', '.a', 'a.', 'a..b', 'a/.hidden', 'a/..b/c'])(
    'accepts dots that are not a whole segment: %j',
    (key) => {
      expect(reasonOf(() => validateRelativeKey(key, 'key', PREFIX))).toBe('no error');
    },
  );

  it("refuses a leading '/'", () => {
    // Attack: "uploads/alice/" + "/x" gives an empty segment that normalising clients collapse.
    expect(reasonOf(() => validateRelativeKey('/etc/passwd', 'key', PREFIX))).toBe('invalid_key');
  });

  it.each(['a//b', 'a//', '//'])("refuses '//' in %j", (key) => {
    // Attack: empty segments are collapsed by some clients, so the object written differs from the grant.
    expect(reasonOf(() => validateRelativeKey(key, 'key', PREFIX))).toBe('invalid_key');
  });

  it("requires a prefix grant to end with '/'", () => {
    // Attack: prefix "team" would also cover "teammate/..." and "team-secrets/...".
    expect(reasonOf(() => validateRelativeKey('team', 'prefix', PREFIX))).toBe('invalid_key');
    expect(reasonOf(() => validateRelativeKey('team/', 'prefix', PREFIX))).toBe('no error');
    expect(reasonOf(() => validateRelativeKey('', 'prefix', PREFIX))).toBe('no error');
  });

  it('applies the path rules to prefix grants too', () => {
    // Attack: a prefix "../" or "a//" would escape or blur the caller's space.
    for (const p of ['../', './', 'a/../', 'a//', '/a/', 'a\u0000/']) {
      expect(
        reasonOf(() => validateRelativeKey(p, 'prefix', PREFIX)),
        p,
      ).toBe('invalid_key');
    }
  });
});

describe('encodeClaimSegment', () => {
  it.each([
    ['/', '~2F'],
    ['.', '~2E'],
    ['..', '~2E~2E'],
    ['a..b', 'a~2E~2Eb'],
    ['*', '~2A'],
    ['?', '~3F'],
    ['$', '~24'],
    [':', '~3A'],
    ['~', '~7E'],
    [' ', '~20'],
    ['{x}', '~7Bx~7D'],
    ['é', '~C3~A9'],
    ['\u{1F600}', '~F0~9F~98~80'],
    ['project_path:group/app', 'project_path~3Agroup~2Fapp'],
  ])('encodes %j as %j', (value, encoded) => {
    // Attack: a claim value injecting '/', '..' or IAM wildcards into the key prefix would move the
    // caller into another tenant's space or widen the grant.
    expect(encodeClaimSegment(value)).toBe(encoded);
  });

  it('keeps the safe characters as they are', () => {
    // Readability for operators; these characters cannot inject anything.
    expect(encodeClaimSegment('Alice_1.x=y@z+w-v')).toBe('Alice_1.x=y@z+w-v');
  });

  it('never emits /, *, ?, $, a bare ~ escape, or a . / .. segment', () => {
    // Attack: any of these in an encoded value would re-open path or wildcard injection.
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (value) => {
        const out = encodeClaimSegment(value);
        expect(out).not.toMatch(/[/*?$]/);
        expect(out).not.toBe('.');
        expect(out).not.toBe('..');
        expect(out.replace(/~[0-9A-F]{2}/g, '')).not.toContain('~');
      }),
      { numRuns: 1000 },
    );
  });

  it('is injective: distinct claim values never encode alike', () => {
    // Attack: tenant "a/b" landing in tenant "a~2Fb"'s (or "a_b"'s) space through a collision.
    const claimChar = fc.oneof(
      fc.constantFrom('/', '.', '~', '*', '?', '$', ':', '2', 'F', 'E', 'a', '\ufffd', '\ud800', '\udc00', '_', '-'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    );
    const claim = fc.string({ unit: claimChar, minLength: 1, maxLength: 12 });
    // A value the encoder refuses (claim_invalid) has no prefix at all, so it cannot collide.
    const encoded = (v: string): string => {
      try {
        return encodeClaimSegment(v);
      } catch (e) {
        if (e instanceof PolicyError && e.reason === 'claim_invalid') return e.reason;
        throw e;
      }
    };
    // Near pairs differ in one spot by look-alikes of the encoding (a raw '/' vs the text "~2F").
    const lookAlike = fc.constantFrom(
      '/',
      '~2F',
      '.',
      '~2E',
      '..',
      '~2E~2E',
      '~',
      '~7E',
      '\ufffd',
      '~EF~BF~BD',
      '\ud800',
      '\udc00',
      '*',
      '~2A',
      '',
    );
    const nearPair = fc
      .tuple(claim, lookAlike, lookAlike, claim)
      .map(([head, x, y, tail]): [string, string] => [head + x + tail, head + y + tail]);
    const pair = fc.oneof(fc.tuple(claim, claim), nearPair);
    fc.assert(
      fc.property(pair, ([a, b]) => {
        fc.pre(a !== b);
        const [ea, eb] = [encoded(a), encoded(b)];
        if (ea !== 'claim_invalid' && eb !== 'claim_invalid') expect(ea).not.toBe(eb);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a claim with a lone surrogate rather than encoding it like U+FFFD', () => {
    // Attack: Buffer writes U+FFFD for a lone surrogate, so sub "\ud800" would share the prefix of
    // a victim whose sub is "\ufffd".
    expect(reasonOf(() => encodeClaimSegment('\ud800'))).toBe('claim_invalid');
    expect(reasonOf(() => encodeClaimSegment('a\udc00'))).toBe('claim_invalid');
    expect(encodeClaimSegment('\ufffd')).toBe('~EF~BF~BD');
  });
});

describe('fillPrefix', () => {
  it('fills the template with encoded claim values', () => {
    // Attack: sub "alice/../bob" reaching uploads/bob/.
    // Prepare
    const claims = { sub: 'alice/../bob', org: 'acme' };
    // Act
    const prefix = fillPrefix('uploads/{org}/{sub}/', claims);
    // Assess
    expect(prefix).toBe('uploads/acme/alice~2F~2E~2E~2Fbob/');
  });

  it('reads dotted paths into nested claims, including keys that contain dots (Kubernetes)', () => {
    expect(fillPrefix('t/{org.id}/', { org: { id: 'acme' } })).toBe('t/acme/');
    expect(fillPrefix('k8s/{kubernetes.io.namespace}/', { 'kubernetes.io': { namespace: 'team-a' } })).toBe(
      'k8s/team-a/',
    );
    expect(
      fillPrefix('k8s/{kubernetes.io.serviceaccount.name}/', { 'kubernetes.io': { serviceaccount: { name: 'ci' } } }),
    ).toBe('k8s/ci/');
    // The whole path as one key wins over a nested reading.
    expect(fillPrefix('t/{a.b}/', { 'a.b': 'flat', a: { b: 'nested' } })).toBe('t/flat/');
  });

  it.each<[string, Record<string, unknown>]>([
    ['missing', {}],
    ['empty string', { sub: '' }],
    ['null', { sub: null }],
    ['object', { sub: { id: 'alice' } }],
    ['array', { sub: ['alice'] }],
    ['empty array', { sub: [] }],
  ])('fails closed (claim_missing) on a %s claim', (_name, claims) => {
    // Attack: an empty substitution turns uploads/{sub}/ into uploads//, a space shared by every
    // caller without the claim; stringified objects/arrays would collide ("[object Object]").
    expect(reasonOf(() => fillPrefix('uploads/{sub}/', claims))).toBe('claim_missing');
  });

  it('stringifies numbers and booleans', () => {
    expect(fillPrefix('p/{n}/{b}/', { n: 42, b: false })).toBe('p/42/false/');
  });

  it('does not read inherited properties as claims', () => {
    // Attack: "{constructor}" or "{__proto__}" resolving to something on Object.prototype.
    expect(reasonOf(() => fillPrefix('p/{constructor}/', {}))).toBe('claim_missing');
    expect(reasonOf(() => fillPrefix('p/{toString}/', {}))).toBe('claim_missing');
  });
});

describe('fillTag', () => {
  it('passes a valid value through unchanged, unicode letters and spaces included', () => {
    expect(fillTag('{project}', { project: 'group/app-1 Ünïcode_.:=+@' })).toBe('group/app-1 Ünïcode_.:=+@');
  });

  it.each(['a#b', 'a<b>', 'a"b', 'a\nb', 'a,b', 'a*b', "a'b", 'a;b'])('refuses %j instead of rewriting it', (value) => {
    // Attack: rewriting (e.g. '#'→'_') makes two identities carry the same tag, which ABAC
    // conditions in the role's trust or permissions policy would treat as the same principal.
    expect(reasonOf(() => fillTag('{project}', { project: value }))).toBe('claim_invalid');
  });

  it('refuses a value over 256 characters', () => {
    // STS would reject it; refusing here gives a clear 4xx instead of an upstream failure.
    expect(reasonOf(() => fillTag('{v}', { v: 'a'.repeat(257) }))).toBe('claim_invalid');
    expect(fillTag('{v}', { v: 'a'.repeat(256) })).toHaveLength(256);
  });

  it('fails closed on a missing claim', () => {
    expect(reasonOf(() => fillTag('{project}', {}))).toBe('claim_missing');
  });
});

describe('fillSourceIdentity', () => {
  it('accepts 2-64 characters of [\\w+=,.@-], template text included', () => {
    expect(fillSourceIdentity('ci-{user}', { user: 'alice@example.com' })).toBe('ci-alice@example.com');
  });

  it.each([
    ['one character', '{u}', { u: 'a' }],
    ['65 characters', '{u}', { u: 'a'.repeat(65) }],
    ['a space', '{u}', { u: 'a b' }],
    ['a slash', '{u}', { u: 'a/b' }],
    ['unicode', '{u}', { u: 'ålice' }],
    ['a colon (aws: prefix)', '{u}', { u: 'aws:admin' }],
    ['an aws: prefix from the template', 'aws:{u}', { u: 'alice' }],
  ])('refuses %s', (_name, template, claims) => {
    // Attack: SourceIdentity is permanent for the role chain and shown in CloudTrail; a value STS
    // would reject or that mimics an AWS-reserved name must be refused, never silently rewritten.
    expect(reasonOf(() => fillSourceIdentity(template, claims))).toBe('claim_invalid');
  });

  it('fails closed on a missing claim', () => {
    expect(reasonOf(() => fillSourceIdentity('{user}', {}))).toBe('claim_missing');
  });
});
