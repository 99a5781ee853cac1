# The ToolBridge token sidecar. The runtime stage holds the production dependencies
# (`npm ci --omit=dev`) and the compiled, bundled JavaScript, nothing else: no
# compiler, no test tools, no .d.ts or source maps. Building needs only TypeScript,
# Node's types and esbuild, at the lockfile's versions, beside the production
# dependencies (whose own types the sources import).
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

# --- compile and bundle: TypeScript, Node's types and esbuild only, in a folder of their own ---
FROM deps AS build
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
    npm install --prefix /opt/compiler --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
      $(node -p "const l = require('./package-lock.json').packages; ['typescript', '@types/node', 'undici-types', 'esbuild', '@jridgewell/sourcemap-codec'].map((n) => n + '@' + l['node_modules/' + n].version).join(' ')") \
    && cp -a /opt/compiler/node_modules/. node_modules/
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
# npm run build: tsc, then the esbuild bundle (dist/cli.js and its chunks); no declarations or maps in the image.
RUN node scripts/build.mjs \
    && find dist -type f \( -name '*.d.ts' -o -name '*.map' -o -name 'bundle-meta.json' \) -delete

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
