# gitcanary: a small non-root image. Build: docker build -t ghcr.io/gitcanary/gitcanary:0.1.0 .
# Stage 1 builds wheels (gitcanary and every dependency); stage 2 installs them without a compiler.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitcanary ./gitcanary
COPY policies ./policies
COPY examples ./examples
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# git for the clone, fetch and push; ssh for SSH remotes; gnupg for signed commits.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client gnupg ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 gitcanary \
    && useradd --uid 65532 --gid 65532 --home-dir /var/lib/gitcanary --create-home gitcanary
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/gitcanary-*.whl && rm -rf /wheels
ENV HOME=/var/lib/gitcanary \
    GITCANARY_WORKDIR=/var/lib/gitcanary/work \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /var/lib/gitcanary
EXPOSE 8080
ENTRYPOINT ["gitcanary"]
CMD ["run", "--listen", "0.0.0.0:8080"]
