// Mints a JWT from the development HMAC issuer of scripts/docker/compose/profiles.yaml, for the
// docker-compose stack only: `node scripts/docker/compose/dev-token.mjs [sub] [minutes]`.
// Node's own crypto (HS256); the secret is read from the profiles file, never typed.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const profiles = parse(readFileSync(new URL('./profiles.yaml', import.meta.url), 'utf8'));
const issuer = profiles.issuers.find((i) => i.hmacSecret);
const sub = process.argv[2] ?? 'alice';
const minutes = Number(process.argv[3] ?? 15);
const now = Math.floor(Date.now() / 1000);
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const head = b64({ alg: 'HS256', typ: 'JWT' });
const body = b64({ iss: issuer.issuer, aud: issuer.audiences[0], sub, iat: now, exp: now + minutes * 60 });
const sig = createHmac('sha256', issuer.hmacSecret).update(`${head}.${body}`).digest('base64url');
process.stdout.write(`${head}.${body}.${sig}\n`);
