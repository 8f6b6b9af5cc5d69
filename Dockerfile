# notify: one binary, one small image. Not built on the development machines (no Docker there);
# test/shipping.test.ts checks this file statically. Expected size: distroless/cc (~23 MB) + the
# binary (~119 MB) ≈ 142 MB.
#
#   docker build -t notify .
#   docker run -p 8080:8080 -v notify-data:/data notify          # embedded mode, nothing else needed

# ── build: the Bun pinned in package.json (devDependency "bun"), installed by npm ci ─────────────
FROM node:22-bookworm-slim AS build
ARG BUN_VERSION=1.4.5
WORKDIR /src
COPY package.json package-lock.json bunfig.toml tsconfig.json assets.d.ts ./
RUN npm ci --no-audit --no-fund \
 && test "$(node_modules/.bin/bun --version)" = "${BUN_VERSION}"
COPY src ./src
COPY migrations ./migrations
COPY proto ./proto
# package.json's build script is the one build (bun build --compile with every entry point: main,
# the commands bundle, the embedded PostgreSQL thread). The smoke test loads the commands bundle.
RUN node_modules/.bin/bun run build \
 && mkdir -p /out/data /tmp/smoke \
 && cp dist/notify /out/notify \
 && /out/notify --version \
 && NOTIFY_DATA_DIR=/tmp/smoke /out/notify outbox

# ── runtime: distroless glibc (the Bun binary links against glibc and libstdc++), non-root ───────
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="notify" \
      org.opencontainers.image.description="Notification and audit system: one binary, every role (gateway, worker, scheduler, audit, grpc-backend)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="UNLICENSED" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /out/notify /notify
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV NOTIFY_DATA_DIR=/data \
    NOTIFY_HTTP_HOST=0.0.0.0 \
    NOTIFY_HTTP_PORT=8080 \
    NOTIFY_ADMIN_PORT=9090 \
    NOTIFY_GRPC_PORT=50051
VOLUME ["/data"]
# 8080 gateway HTTP/WebSocket, 9090 health/metrics of roles without HTTP, 50051 grpc-backend
EXPOSE 8080 9090 50051
# Asks this container's own process for /readyz (gateway port or admin port, by NOTIFY_ROLE).
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 CMD ["/notify", "healthcheck"]
# SIGTERM drains (stop taking work, finish in flight) within NOTIFY_SHUTDOWN_TIMEOUT_MS (20 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/notify"]
