# credvend container image. Multi-stage: the build stage compiles TypeScript with the full
# dependency tree, then prunes it to production dependencies; the runtime stage gets only
# dist/, the pruned node_modules and package.json, owned by root and read-only to the service.
#
#   docker build -t credvend .
#   docker run --read-only --cap-drop ALL -p 8080:8080 -p 9090:9090 \
#     -v "$PWD/profiles.yaml:/etc/credvend/profiles.yaml:ro" -e AWS_REGION=eu-west-1 credvend
#
# NODE_IMAGE: any Debian-based Node 22 image with npm (official: node:22-bookworm-slim). Where no
# registry is reachable, scripts/docker/base-image.sh builds an equivalent one (docs/deploy.md).
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Lockfile first: the dependency layer is reused while only sources change. --ignore-scripts:
# no install script of any dependency runs in the builder (none is needed to compile).
# Optional build secret `npm_ca`: a CA bundle for a TLS-intercepting proxy between the builder
# and the npm registry (`docker build --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt`).
# A secret mount exists for this RUN only: it never lands in a layer.
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca,required=false \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && find dist -name '*.map' -delete \
 && npm prune --omit=dev --no-audit --no-fund --ignore-scripts --offline \
 && rm -rf node_modules/.package-lock.json

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="credvend" \
      org.opencontainers.image.description="Short-lived AWS credentials scoped to exactly the S3 objects a caller may upload or download" \
      org.opencontainers.image.licenses="UNLICENSED"
ENV NODE_ENV=production \
    CREDVEND_CONFIG_FILE=/etc/credvend/profiles.yaml \
    CREDVEND_HOST=0.0.0.0 \
    CREDVEND_PORT=8080 \
    CREDVEND_ADMIN_HOST=0.0.0.0 \
    CREDVEND_ADMIN_PORT=9090 \
    CREDVEND_AUDIT_LOG=stdout
WORKDIR /app
# Root-owned and not writable by the service's user: a compromised process cannot patch its own
# code. The service writes nothing to the filesystem (logs and audit go to stdout), so the
# container runs with a read-only root filesystem.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY scripts/docker/healthcheck.mjs ./healthcheck.mjs
# Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd entry.
USER 10001:10001
EXPOSE 8080 9090
# node is PID 1 (exec form, no shell): SIGTERM reaches it directly and close-with-grace drains
# in-flight requests for CREDVEND_SHUTDOWN_GRACE_MS before exiting 0.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
# --max-semi-space-size=8 (MB), as `npm start` (package.json, kept equal by the image test): V8's
# default young generation grows to ~3 x 16 MB under load, which took the process to ~200 MB RSS at
# a few thousand requests a second; at 8 MB it stays near 125 MB at the same CPU per request.
ENTRYPOINT ["node", "--max-semi-space-size=8", "--heap-growing-percent=50", "/app/dist/server.js"]
