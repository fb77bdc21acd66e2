# smartrealm: one image, one component per container (`serve --component NAME`).
# Build: docker build -t smartrealm .   Run: see deploy/compose.yaml and docs/deploy.md.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# Runtime dependencies only (no development extras), pinned by constraints.txt.
RUN python -m venv /opt/smartrealm \
    && /opt/smartrealm/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 smartrealm \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/smartrealm smartrealm \
    && mkdir -p /var/lib/smartrealm /etc/smartrealm && chown 10001:10001 /var/lib/smartrealm
COPY --from=build /opt/smartrealm /opt/smartrealm
ENV PATH="/opt/smartrealm/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/smartrealm
EXPOSE 8080
# The component listens on 8080; /readyz is 200 once its database and keys are ready.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["smartrealm", "serve", "--config", "/etc/smartrealm/realm.toml", "--listen", "0.0.0.0:8080", "--log-format", "json"]
CMD ["--component", "auth_server"]
