// Loopback STS stub for the benchmark and local tests: answers AssumeRole and GetCallerIdentity
// (awsQuery XML) instantly, so the benchmark measures credvend, not AWS.
import http from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';

const PORT = Number(process.env.STUB_PORT || 0);
const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const id = (n) => {
  let s = '';
  for (const x of randomBytes(n)) s += A[x & 31];
  return s;
};
const TOKEN_TAIL = randomBytes(600).toString('base64'); // real session tokens are ~700-1000 chars
const NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

function assumeRole(p) {
  const role = (p.get('RoleArn') || 'arn:aws:iam::123456789012:role/vendor').split('/').pop();
  const sess = p.get('RoleSessionName') || 'session';
  const pol = p.get('Policy');
  const secs = Number(p.get('DurationSeconds') || 900);
  return `<AssumeRoleResponse xmlns="${NS}"><AssumeRoleResult>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/${role}/${sess}</Arn><AssumedRoleId>AROA${id(17)}:${sess}</AssumedRoleId></AssumedRoleUser>
<Credentials><AccessKeyId>ASIA${id(16)}</AccessKeyId><SecretAccessKey>${randomBytes(30).toString('base64')}</SecretAccessKey>
<SessionToken>IQoJb3JpZ2luX2Vj${randomBytes(24).toString('base64')}${TOKEN_TAIL}</SessionToken>
<Expiration>${new Date(Date.now() + secs * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')}</Expiration></Credentials>
<PackedPolicySize>${pol ? Math.min(99, Math.ceil(pol.length / 20)) : 0}</PackedPolicySize>
</AssumeRoleResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`;
}

function callerIdentity() {
  return `<GetCallerIdentityResponse xmlns="${NS}"><GetCallerIdentityResult>
<Arn>arn:aws:sts::123456789012:assumed-role/credvend-task/bench</Arn><UserId>AROABENCH:bench</UserId><Account>123456789012</Account>
</GetCallerIdentityResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`;
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const p = new URLSearchParams(Buffer.concat(chunks).toString());
    const xml = p.get('Action') === 'GetCallerIdentity' ? callerIdentity() : assumeRole(p);
    res.writeHead(200, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml) });
    res.end(xml);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(PORT, '127.0.0.1', () => console.log(`sts-stub ready ${server.address().port}`));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0));
