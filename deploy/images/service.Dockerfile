# One image recipe for every Moat Node service. The service is a build argument:
#
#   podman build --network=host --pull=never -f deploy/images/service.Dockerfile \
#     --build-arg SERVICE=control -t localhost/moat/control:<version> .
#
# builds the workspace package @moat/<SERVICE> (services/<SERVICE>) and only
# what it depends on. scripts/images.sh drives it (and builds the bases).
#
#   prune  turbo prune @moat/$SERVICE --docker: the package, its workspace
#          dependencies and a pruned lockfile
#   build  npm ci on the pruned manifests (a layer that only changes with
#          them) → full pruned source → turbo build → drop devDependencies →
#          collect dist/ and production node_modules into /out
#   final  the slim Node base, the service's Debian tools (SYSTEM_PACKAGES),
#          non-root (10001), /out only

ARG NODE_VERSION=24.21.0

# ---------------------------------------------------------------------------
FROM localhost/moat/node:${NODE_VERSION}-bookworm-build AS prune
ARG SERVICE
# A CA bundle for a TLS-inspecting egress proxy, mounted by the builder for the
# build only (scripts/images.sh: -v <host bundle>:/run/moat-build-ca.pem). Build
# arguments are not kept in the final image's environment.
ARG NODE_EXTRA_CA_CERTS=
WORKDIR /src
COPY . .
# turbo is a root devDependency; run exactly that version without installing the repo.
RUN --mount=type=cache,id=moat-npm,target=/root/.npm,sharing=locked \
    test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<name>" >&2; exit 1; } \
 && test -f "services/${SERVICE}/package.json" || { echo "no services/${SERVICE}" >&2; exit 1; } \
 && turbo_version="$(node -p 'require("./package.json").devDependencies.turbo')" \
 && npm exec --yes --package="turbo@${turbo_version}" -- turbo prune "@moat/${SERVICE}" --docker

# ---------------------------------------------------------------------------
FROM localhost/moat/node:${NODE_VERSION}-bookworm-build AS build
ARG SERVICE
ARG NODE_EXTRA_CA_CERTS=
WORKDIR /app
# Manifests and lockfile only: this layer and `npm ci` stay cached until they change.
COPY --from=prune /src/out/json/ ./
# `npm install` held to the lockfile, not `npm ci`: the registry these machines
# reach serves only linux-x64 optional binaries (turbo, biome), so the lockfile
# lacks the other platforms' entries and `npm ci` refuses it. What `npm ci`
# guarantees is checked instead: every installed path has the locked version.
# No native addons yet: install scripts stay off (npm 11 would prompt for them).
RUN --mount=type=cache,id=moat-npm,target=/root/.npm,sharing=locked \
    cp package-lock.json /tmp/locked.json \
 && npm install --ignore-scripts --no-audit --no-fund --prefer-offline \
 && node -e ' \
      const pkgs = (f) => Object.entries(require(f).packages) \
        .filter(([p]) => p.includes("node_modules/")).map(([p, m]) => `${p}@${m.version}`); \
      const locked = new Set(pkgs("/tmp/locked.json")); \
      const drift = pkgs("/app/package-lock.json").filter((e) => !locked.has(e)); \
      if (drift.length) { \
        console.error("package-lock.json is out of date (run npm install, commit it):\n  " + drift.join("\n  ")); \
        process.exit(1); \
      }'
COPY --from=prune /src/out/full/ ./
RUN npx --no-install turbo run build --filter="@moat/${SERVICE}..." --output-logs=errors-only \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund
# /out = root manifest + production node_modules + each workspace's manifest and dist/
# (workspace packages are symlinked from node_modules, so their paths are kept).
RUN mkdir -p /out \
 && cp package.json /out/ \
 && cp -a node_modules /out/ \
 && for ws in packages/* services/*; do \
      [ -f "$ws/package.json" ] || continue; \
      mkdir -p "/out/$ws" && cp "$ws/package.json" "/out/$ws/"; \
      if [ -d "$ws/dist" ]; then cp -a "$ws/dist" "/out/$ws/"; fi; \
      if [ -d "$ws/node_modules" ]; then cp -a "$ws/node_modules" "/out/$ws/"; fi; \
    done \
 && find /out -path '*/node_modules' -prune -o \
      \( -name '*.test.js' -o -name '*.test.js.map' -o -name '*.test.d.ts*' -o -name '.tsbuildinfo' \) \
      -type f -print | xargs -r rm -f \
 && test -f "/out/services/${SERVICE}/dist/main.js"

# ---------------------------------------------------------------------------
FROM localhost/moat/node:${NODE_VERSION}-bookworm-slim
ARG SERVICE
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="moat-${SERVICE}" \
      org.opencontainers.image.description="Moat ${SERVICE} service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Moat" \
      org.opencontainers.image.base.name="localhost/moat/node:${NODE_VERSION}-bookworm-slim" \
      io.moat.service="${SERVICE}"
ENV NODE_ENV=production \
    MOAT_SERVICE=${SERVICE} \
    MOAT_VERSION=${VERSION}
# The Debian tools a service drives (package.json "moat": {"systemPackages": [...]}), e.g. nft,
# conntrack and ulogd for the firewall, tc for qos, clamd and freshclam for av-scanner (whose pod
# runs this image as its clamd and freshclam sidecars too); scripts/images.sh passes them. None for most.
ARG SYSTEM_PACKAGES=
RUN if [ -n "${SYSTEM_PACKAGES}" ]; then \
      apt-get update \
   && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${SYSTEM_PACKAGES} \
   && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log; \
    fi
COPY --from=build --chown=0:0 /out/ /app/
# ENTRYPOINT cannot expand build arguments, so the working directory carries the
# service: the process runs /app/services/$SERVICE/dist/main.js, resolving
# modules from the workspace layout under /app.
WORKDIR /app/services/${SERVICE}
USER 10001:10001
ENTRYPOINT ["node", "--enable-source-maps", "dist/main.js"]
