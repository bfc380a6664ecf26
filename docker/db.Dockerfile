# PostgreSQL 15 from Debian on the local debian:bookworm (no registry, so no official
# image): data on a volume at /var/lib/postgresql/data, reachable only through its Unix
# socket in /run/pbx-db (a volume the proxy mounts too): no TCP port, no password to keep.
FROM debian:bookworm

ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
# No `main` cluster at install: the entrypoint makes the one in the volume.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/00-cloud-pbx.conf \
 && apt-get update -q \
 && apt-get install -y -q --no-install-recommends postgresql-15 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data \
 && install -d -o postgres -g postgres -m 2775 /run/pbx-db

COPY docker/db-entrypoint.sh /usr/local/bin/db-entrypoint.sh
USER postgres
VOLUME /var/lib/postgresql/data
# SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "/usr/local/bin/db-entrypoint.sh"]
