// The image's HEALTHCHECK: GET /healthz on the admin listener (liveness: the process serves).
// Node's own fetch, so the runtime image needs no curl or wget. Exit 0 = healthy, 1 = unhealthy.
const port = process.env.CREDVEND_ADMIN_PORT || '9090';
const host =
  !process.env.CREDVEND_ADMIN_HOST ||
  process.env.CREDVEND_ADMIN_HOST === '0.0.0.0' ||
  process.env.CREDVEND_ADMIN_HOST === '::'
    ? '127.0.0.1'
    : process.env.CREDVEND_ADMIN_HOST;
const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
