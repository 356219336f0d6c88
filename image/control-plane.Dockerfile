# The Berth control plane as an image, built by src/docker/control-plane-image.ts
# (`berth image build-control-plane`), which assembles this build context from the checkout:
#   node/<NODE_DIR>/node, tarball.sha256  the pinned Node, as the runtime image builder caches it (so the
#                                         control plane builds its runtime image here with no download)
#   deps/node_modules/                    production dependencies only, native addons as built here
#   app/                                  package.json, bin/, dist/, web/dist/, image/ (this file included)
# Build arguments: BASE_IMAGE (the base's image ID, so the build uses exactly the image that was hashed),
# NODE_DIR (node-linux-<arch>-<version>). Ordered from least to most often changed.
ARG BASE_IMAGE=berth-base:bookworm
FROM ${BASE_IMAGE}
ARG NODE_DIR
USER root
COPY node/ /opt/berth/cache/node/
RUN ln -sf "/opt/berth/cache/node/${NODE_DIR}/node" /usr/local/bin/node \
  && { node --version >/dev/null || { echo "berth: the pinned Node.js cannot run on this base image (it needs glibc 2.28 or newer)" >&2; exit 1; }; }
COPY deps/node_modules/ /opt/berth/node_modules/
RUN cd /opt/berth \
  && { node -e "new (require('better-sqlite3'))(':memory:').close(); require('@lydell/node-pty')" \
    || { echo "berth: the native addons installed on the building machine do not load on this base image (an older glibc?)" >&2; exit 1; }; }
COPY app/ /opt/berth/
# BERTH_CACHE_DIR: where the runtime image builder finds the pinned Node above. The data directory is
# meant to be a volume (-v berth-data:/var/lib/berth). /opt/workspace_base is where the workspace is
# mounted (-v $WORKSPACE_BASE:/opt/workspace_base); WORKSPACE_MOUNT_PATH names it on the Docker host.
ENV BERTH_CACHE_DIR=/opt/berth/cache BERTH_DATA_DIR=/var/lib/berth NODE_ENV=production
RUN mkdir -p /var/lib/berth /opt/workspace_base
WORKDIR /opt/berth
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.BERTH_PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/opt/berth/image/control-plane-entrypoint.sh"]
