# The ToolBridge token sidecar. The runtime stage holds the production dependencies
# (`npm ci --omit=dev`) and the compiled JavaScript, nothing else: no compiler, no
# test tools, no .d.ts or source maps. Compiling needs only TypeScript and Node's
# types, at the lockfile's versions, beside the production dependencies (whose own
# types the sources import).
# No `# syntax=` line: BuildKit would pull a frontend image from Docker Hub, which
# fails offline and in locked-down builders; the built-in frontends of Docker
# (BuildKit) and Buildah/Podman handle the cache and secret mounts below.

ARG NODE_VERSION=24

# --- production dependencies, from the lockfile ---
FROM node:${NODE_VERSION}-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# npm's cache is a cache mount: kept between builds on the same builder, never in a layer.
# A build behind a TLS-inspecting proxy passes the host's CA bundle as a build
# secret (`--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt`): it is used for
# this one step and never stored in a layer. Without it, npm uses Node's own CAs.
# No dependency has an install script (test/deploy.test.ts checks the lockfile).
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- compile: TypeScript and Node's types only, in a folder of their own ---
FROM deps AS build
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
    npm install --prefix /opt/compiler --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
      $(node -p "const l = require('./package-lock.json').packages; ['typescript', '@types/node', 'undici-types'].map((n) => n + '@' + l['node_modules/' + n].version).join(' ')")
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN /opt/compiler/node_modules/.bin/tsc -p tsconfig.build.json --typeRoots /opt/compiler/node_modules/@types \
      --declaration false --sourceMap false

# --- what runs: the dependencies without their type declarations and source maps ---
FROM deps AS runtime-modules
RUN find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete

FROM node:${NODE_VERSION}-slim
ENV NODE_ENV=production \
    TOOLBRIDGE_SIDECAR_PORT=8787
WORKDIR /app
COPY --chown=node:node package.json ./package.json
COPY --from=runtime-modules --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 8787
# No curl in a slim image: the sidecar probes itself.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["node", "dist/cli.js", "healthcheck"]
# Exec form: Fly's init (PID 1) and Docker deliver SIGINT/SIGTERM straight to node.
CMD ["node", "dist/cli.js"]
