# haowatch as a container: `haowatch run` (scheduler, crawls, /healthz and /metrics on port 8080).
# Needs DATABASE_URL (see docker-compose.yml); the image has no embedded PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# `make` runs the README's installation (`make install`); nothing else is needed from apt.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 haowatch \
    && useradd --system --uid 10001 --gid haowatch --create-home --home-dir /home/haowatch haowatch

WORKDIR /app

# Dependencies first, so editing the code does not reinstall them: this layer is rebuilt only when
# pyproject.toml, README.md or the Makefile change. The package directories are created empty here;
# the editable install maps crawler/, scheduler/ and db/ under /app, and the real code copied below
# fills them. `EXTRAS=` (empty) installs the runtime only: no embedded server, test or bench tools.
COPY pyproject.toml README.md Makefile ./
RUN mkdir -p crawler scheduler db \
    && make install EXTRAS=

COPY crawler/ crawler/
COPY scheduler/ scheduler/
COPY db/ db/
RUN python -m compileall -q crawler scheduler db

ENV PATH="/app/.venv/bin:${PATH}" \
    HAOWATCH_HTTP_HOST=0.0.0.0 \
    HAOWATCH_HTTP_PORT=8080

# The code and the venv stay owned by root: the service cannot modify itself.
USER haowatch

EXPOSE 8080

# No curl in the slim image: python's urllib. A 503 (unhealthy) or no answer raises, exiting non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HAOWATCH_HTTP_PORT', '8080'), timeout=4)"]

# `docker stop` sends SIGTERM and waits (docker-compose.yml allows 60 s) before killing.
STOPSIGNAL SIGTERM
CMD ["haowatch", "run"]
