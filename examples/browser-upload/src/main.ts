// The page: pick a file, get upload credentials from credvend, upload straight to S3 with a
// progress bar, then fetch the object back with download credentials.
//
// Settings come from the form; its defaults from the query string (never secrets):
//   ?credvend=https://credvend.example.com&profile=browser-uploads
//    &s3Endpoint=http://127.0.0.1:7480&tenant=123456789012     (S3-compatible servers only)
//    &refreshBeforeSeconds=120                                   (renew credentials this early)
// A token is pasted, or arrives from the identity provider's redirect as `#id_token=…` (read
// once, then removed from the address bar and history).
import {
  CredvendError,
  refreshingCredentials,
  requestGrant,
  type CredvendClientOptions,
  type Grant,
} from './credvend.js';
import { describeS3Error, downloadObject, s3Client, uploadObject, type S3Target } from './s3.js';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

const ui = {
  credvendUrl: $<HTMLInputElement>('credvend-url'),
  profile: $<HTMLInputElement>('profile'),
  token: $<HTMLInputElement>('token'),
  s3Endpoint: $<HTMLInputElement>('s3-endpoint'),
  tenant: $<HTMLInputElement>('tenant'),
  writeKey: $<HTMLInputElement>('write-key'),
  file: $<HTMLInputElement>('file'),
  key: $<HTMLInputElement>('key'),
  upload: $<HTMLButtonElement>('upload'),
  download: $<HTMLButtonElement>('download'),
  progress: $<HTMLProgressElement>('progress'),
  progressText: $<HTMLElement>('progress-text'),
  status: $<HTMLElement>('status'),
  result: $<HTMLElement>('result'),
  objectKey: $<HTMLElement>('object-key'),
  objectSize: $<HTMLElement>('object-size'),
  objectSha: $<HTMLElement>('object-sha'),
  grants: $<HTMLElement>('grants'),
  downloadResult: $<HTMLElement>('download-result'),
};

const query = new URLSearchParams(location.search);
ui.credvendUrl.value = query.get('credvend') ?? ui.credvendUrl.value;
ui.profile.value = query.get('profile') ?? ui.profile.value;
ui.s3Endpoint.value = query.get('s3Endpoint') ?? '';
ui.tenant.value = query.get('tenant') ?? '';
const refreshBeforeMs = Number(query.get('refreshBeforeSeconds') ?? 120) * 1000;

// A token from an OIDC redirect: taken once, then scrubbed from the URL so it is neither
// bookmarked, shared, nor sent as a Referer.
const fragment = new URLSearchParams(location.hash.slice(1));
const fromRedirect = fragment.get('id_token');
if (fromRedirect) {
  ui.token.value = fromRedirect;
  history.replaceState(null, '', location.pathname + location.search);
}

// Demonstration and test hook: `?clockStepPerPartSeconds=400` moves the credentials' clock on by
// that much each time a part finishes, as on a link so slow that the upload outlives its
// credentials. The wall clock, and so request signing, is untouched.
const clockStepMs = Number(query.get('clockStepPerPartSeconds') ?? 0) * 1000;
let clockOffsetMs = 0;
const now = (): number => Date.now() + clockOffsetMs;

const client = (): CredvendClientOptions => ({
  url: ui.credvendUrl.value.trim(),
  token: () => {
    const t = ui.token.value.trim();
    if (!t) throw new CredvendError('paste a token (JWT) first', undefined, undefined, undefined);
    return t;
  },
});

const target = (grant: Grant): S3Target => {
  const endpoint = ui.s3Endpoint.value.trim();
  const tenant = ui.tenant.value.trim();
  return {
    region: grant.region,
    bucket: tenant ? `${tenant}:${grant.bucket}` : grant.bucket,
    ...(endpoint ? { endpoint } : {}),
  };
};

function show(kind: 'busy' | 'ok' | 'error', text: string): void {
  ui.status.className = kind;
  ui.status.textContent = text;
}

function explain(err: unknown): string {
  if (err instanceof CredvendError) {
    return `credvend refused: ${err.message}${err.code ? ` [${err.code}${err.status ? `, HTTP ${err.status}` : ''}]` : ''}${err.requestId ? ` (request ${err.requestId})` : ''}`;
  }
  const s3 = describeS3Error(err);
  if (s3) return s3;
  // A browser reports an S3 answer without CORS headers (no bucket CORS rule for this origin) as a network error.
  return `upload failed: ${err instanceof Error ? err.message : String(err)} (network failure, or the bucket has no CORS rule for ${location.origin})`;
}

async function sha256(data: BufferSource): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function setProgress(loaded: number, total: number): void {
  const pct = total > 0 ? Math.floor((loaded / total) * 100) : 0;
  ui.progress.value = pct;
  ui.progressText.textContent = `${pct}% (${loaded.toLocaleString('en')} of ${total.toLocaleString('en')} bytes)`;
}

ui.file.addEventListener('change', () => {
  const f = ui.file.files?.[0];
  if (f && !ui.key.value) ui.key.value = f.name;
});

ui.upload.addEventListener('click', () => void onUpload());

async function onUpload(): Promise<void> {
  const file = ui.file.files?.[0];
  if (!file) return show('error', 'pick a file first');
  const key = ui.key.value.trim() || file.name;
  ui.upload.disabled = true;
  ui.download.disabled = true;
  ui.result.hidden = true;
  ui.downloadResult.textContent = '';
  setProgress(0, file.size);
  try {
    show('busy', 'asking credvend for upload credentials…');
    const creds = refreshingCredentials(
      client(),
      { profile: ui.profile.value.trim(), operation: 'upload', keys: [key] },
      { refreshBeforeMs, now },
    );
    const grant = await creds.first;
    const objectKey = ui.writeKey.value.trim() || grant.keys[0];
    if (!objectKey) throw new Error('credvend granted no key');
    const to = target(grant);
    show('busy', `uploading to ${objectKey}…`);
    let lastLoaded = 0;
    await uploadObject(s3Client(to, creds.provider), to.bucket, objectKey, file, (loaded, total) => {
      if (clockStepMs && loaded > lastLoaded && loaded < total) clockOffsetMs += clockStepMs;
      lastLoaded = loaded;
      setProgress(loaded, total);
    });
    ui.objectKey.textContent = objectKey;
    ui.objectSize.textContent = `${file.size.toLocaleString('en')} bytes`;
    ui.objectSha.textContent = await sha256(await file.arrayBuffer());
    ui.grants.textContent =
      creds.grants() === 1
        ? '1 (no renewal needed)'
        : `${creds.grants()} (renewed ${creds.grants() - 1}× before expiry)`;
    ui.result.hidden = false;
    ui.download.disabled = false;
    show('ok', `uploaded ${file.name} to s3://${grant.bucket}/${objectKey}`);
  } catch (err) {
    show('error', explain(err));
  } finally {
    ui.upload.disabled = false;
  }
}

ui.download.addEventListener('click', () => void onDownload());

async function onDownload(): Promise<void> {
  const key = ui.key.value.trim();
  ui.download.disabled = true;
  try {
    show('busy', 'asking credvend for download credentials…');
    const grant = await requestGrant(client(), {
      profile: ui.profile.value.trim(),
      operation: 'download',
      keys: [key],
    });
    const objectKey = grant.keys[0];
    if (!objectKey) throw new Error('credvend granted no key');
    const to = target(grant);
    const bytes = await downloadObject(
      s3Client(to, () => Promise.resolve(grant)),
      to.bucket,
      objectKey,
    );
    ui.downloadResult.textContent = `downloaded ${bytes.byteLength.toLocaleString('en')} bytes, SHA-256 ${await sha256(bytes)}`;
    // Save it: a blob: URL never leaves the page, and is revoked once the browser has it.
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([bytes]));
    a.download = objectKey.split('/').pop() ?? 'download';
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    show('ok', `downloaded s3://${grant.bucket}/${objectKey}`);
  } catch (err) {
    show('error', explain(err));
  } finally {
    ui.download.disabled = false;
  }
}

show('ok', 'ready');
