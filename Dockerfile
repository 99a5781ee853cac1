# The ToolBridge token sidecar. Same shape as Fly's Node generator: build with
# dev dependencies, prune them, copy only what runs into a slim runtime image.
# No `# syntax=` line: BuildKit would pull a frontend image from Docker Hub, which
# fails offline and in locked-down builders; the built-in frontend does all this needs.

ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# A build behind a TLS-inspecting proxy passes the host's CA bundle as a build
# secret (`--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt`): it is used for
# this one step and never stored in a layer. Without it, npm uses Node's own CAs.
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
    npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:${NODE_VERSION}-slim
ENV NODE_ENV=production \
    TOOLBRIDGE_SIDECAR_PORT=8787
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# Node 22.1+ caches compiled code in NODE_COMPILE_CACHE: warmed here by loading
# the bundle's chunks once, so a new container starts warm (Node 20 ignores it).
ENV NODE_COMPILE_CACHE=/app/.node-compile-cache
RUN install -d -o node -g node /app/.node-compile-cache
USER node
RUN node --input-type=module -e "for (const f of (await import('node:fs')).readdirSync('dist')) if (/^chunk-.*\\.js$/.test(f)) await import('./dist/' + f)"
EXPOSE 8787
# No curl in a slim image: the sidecar probes itself.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["node", "dist/cli.js", "healthcheck"]
# Exec form: Fly's init (PID 1) and Docker deliver SIGINT/SIGTERM straight to node.
CMD ["node", "dist/cli.js"]
