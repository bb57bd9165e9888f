# gitcanary: a small non-root image, published by .github/workflows/image.yml for linux/amd64 and
# linux/arm64 as ghcr.io/<owner>/gitcanary:<version>. Build: docker build -t gitcanary:dev .
# The tests build the same image without Docker (scripts/build_image.py): a Debian bookworm root from
# Debian's packages (mmdebstrap, minbase: what debian:bookworm-slim is), the same recipe
# (scripts/image/install.sh), this file's ENV, USER, WORKDIR, ENTRYPOINT and CMD read from here, packed
# as an OCI image (umoci), then started (runc) to run `gitcanary demo`. Keep this file to
# instructions that build can follow: FROM, COPY, RUN of the recipe, and image settings.

# Stage 1: the gitcanary wheel (pure Python; its dependencies come from PyPI in stage 2).
FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitcanary ./gitcanary
COPY policies ./policies
COPY examples ./examples
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: Debian's Python, git, ssh, gnupg, and gitcanary with every extra in a virtualenv.
FROM debian:bookworm-slim
COPY --from=build /wheels /tmp/wheels
COPY scripts/image/install.sh /tmp/install.sh
RUN PIP_NO_CACHE_DIR=1 sh /tmp/install.sh /tmp/wheels && rm -rf /tmp/wheels /tmp/install.sh
ENV PATH=/opt/gitcanary/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/gitcanary \
    GITCANARY_WORKDIR=/var/lib/gitcanary/work \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /var/lib/gitcanary
EXPOSE 8080
ENTRYPOINT ["gitcanary"]
CMD ["run", "--listen", "0.0.0.0:8080"]
