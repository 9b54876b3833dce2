# chronoforce container image: one image for `run`, `web` and `worker` (docs/deploy.md).
# Stage 1 builds the wheel (with the Salesforce metadata package inside, see setup.py) and the
# virtual environment; stage 2 carries only that environment, runs as a non-root user and
# reports its health from GET /ready. Secrets are files in /run/secrets (docker/entrypoint.sh).

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY src ./src
COPY salesforce ./salesforce
RUN python -m venv /opt/chronoforce \
    && /opt/chronoforce/bin/pip install --no-compile "pip==25.3" \
    && /opt/chronoforce/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/chronoforce/bin/pip install /wheels/chronoforce-*.whl \
        "psycopg[binary]>=3.1.19" "redis>=5.0"

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="chronoforce" \
      org.opencontainers.image.description="Salesforce orders shipped through Chronopost" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 chronoforce \
    && useradd --system --uid 10001 --gid chronoforce --home-dir /var/lib/chronoforce \
        --create-home --shell /usr/sbin/nologin chronoforce
COPY --from=build /opt/chronoforce /opt/chronoforce
COPY docker/entrypoint.sh /usr/local/bin/chronoforce-entrypoint
ENV PATH=/opt/chronoforce/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CHRONOFORCE_DATABASE_URL=sqlite:////var/lib/chronoforce/chronoforce.db
WORKDIR /var/lib/chronoforce
USER 10001:10001
EXPOSE 8700
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8700/ready', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["chronoforce-entrypoint"]
CMD ["run"]
