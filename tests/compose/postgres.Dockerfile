# PostgreSQL from Debian's package (bookworm: 15), for the compose engine test: the official image's
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB set up on first start (postgres-init.sh).
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql && chmod 700 /var/lib/postgresql/data
COPY postgres-init.sh /usr/local/bin/postgres-init.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
CMD ["sh", "/usr/local/bin/postgres-init.sh"]
