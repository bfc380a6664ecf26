-- Registrations kept in PostgreSQL (README, A cluster of proxies): Kamailio's usrloc writes
-- its contacts here (db_mode 2, write-back each second from a timer process of its own) and
-- loads them at start, so a proxy restarted, even killed, comes back with its SIMs
-- registered. Every node of a cluster writes the same rows (each holds every registration,
-- replicated by dmq_usrloc): one table, one row per contact (ruid), whoever wrote it first.
-- Kamailio 5.6's own schema (usrloc table version 9; kamailio.cfg skips the version check).
CREATE TABLE location (
    id SERIAL PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
);
CREATE INDEX location_account_contact_idx ON location (username, domain, contact);
CREATE INDEX location_expires_idx ON location (expires);
CREATE INDEX location_connection_idx ON location (server_id, connection_id);

-- A contact another node inserted already is the same contact (the same ruid, replicated):
-- the second insert does nothing instead of failing (Kamailio's db_postgres has no upsert).
CREATE RULE location_insert_once AS ON INSERT TO location
    WHERE EXISTS (SELECT 1 FROM location l WHERE l.ruid = NEW.ruid)
    DO INSTEAD NOTHING;
