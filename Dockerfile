# The code location as a container image: the code server (default command), and with another
# command the webserver, the daemon and every run task or pod (`dagster api execute_run`), all
# sharing the instance in DAGSTER_HOME. Installs the project from pyproject.toml, no dev tools.
#
#   docker build -t warehouse_assets .                                   # ECS (EcsRunLauncher)
#   docker build -t warehouse_assets --build-arg EXTRAS=k8s \
#       --build-arg INSTANCE=deploy/dagster-k8s.yaml .                   # Kubernetes
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
ENV DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/dagster/app

# The package and its data (replication.yaml, summaries.yaml, .sql files) from pyproject.toml.
COPY pyproject.toml ./
COPY warehouse_assets ./warehouse_assets
ARG EXTRAS=""
RUN pip install ".${EXTRAS:+[$EXTRAS]}" \
    && rm -rf build *.egg-info

# The instance every process of the deployment opens (storage, queue, run launcher).
ARG INSTANCE=deploy/dagster-ecs.yaml
COPY ${INSTANCE} ${DAGSTER_HOME}/dagster.yaml
COPY workspace.yaml ./

RUN useradd --system --uid 1000 --home-dir /opt/dagster dagster \
    && chown -R dagster /opt/dagster
USER dagster

EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "warehouse_assets.definitions"]
