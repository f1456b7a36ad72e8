# syntax=docker/dockerfile:1
# The Latchkey IdP (and CLI, sidecar) as an image: docs/operations.md.
#   docker build -t latchkey .
#   docker run --read-only --tmpfs /tmp -v latchkey-data:/var/lib/latchkey -p 8443:8443 \
#     -e LATCHKEY_ISSUER=https://idp.example.com:8443 -e LATCHKEY_MASTER_KEY=… latchkey
ARG NODE_IMAGE=node:20-bookworm-slim

# Build: compilers for better-sqlite3's native module, the whole workspace, then production dependencies only.
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json tsconfig.build.json ./
COPY packages ./packages
COPY scripts/build_console.mjs ./scripts/build_console.mjs
# `npm ci` builds better-sqlite3 from source and runs `prepare` (tsc -b, then the admin console:
# packages/server/console-dist): packages/*/dist.
RUN npm ci --no-audit --no-fund \
  && npm prune --omit=dev --no-audit --no-fund \
  && rm -rf packages/*/test packages/*/src packages/*/tsconfig*.json packages/testkit packages/server/console

# Runtime: no compilers, no npm cache, owned by root and run as an unprivileged user.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    LATCHKEY_HOST=0.0.0.0 \
    LATCHKEY_PORT=8443 \
    LATCHKEY_DATA_DIR=/var/lib/latchkey
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages ./packages
# The only writable places: the data folder (a volume: SQLite, the master key file, the local CA;
# with PostgreSQL and the master key from a secret it holds nothing that must survive) and /tmp.
RUN mkdir -p /var/lib/latchkey && chown 10001:10001 /var/lib/latchkey && chmod 0700 /var/lib/latchkey
USER 10001:10001
VOLUME ["/var/lib/latchkey"]
EXPOSE 8443
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/packages/cli/dist/main.js", "health"]
ENTRYPOINT ["node", "/app/packages/cli/dist/main.js"]
CMD ["serve"]
