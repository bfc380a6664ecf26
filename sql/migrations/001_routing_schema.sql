-- Routing schema v1: companies, their districts, DIDs, managers and SIMs; the
-- operator's carrier trunks. The database itself refuses a row that would break
-- routing, so a raw SQL edit is as safe as the admin tool. Constraint names say
-- what was violated; PostgreSQL's DETAIL line shows the refused row.

-- E.164: '+', a non-zero country code digit, at most 15 digits in all (ITU-T E.164).
CREATE FUNCTION is_e164(n text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT n ~ '^\+[1-9][0-9]{6,14}$' $$;

CREATE TABLE company (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CONSTRAINT company_name_unique UNIQUE
                CONSTRAINT company_name_not_blank CHECK (btrim(name) <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A trunk belongs to the operator and is shared by companies.
CREATE TABLE trunk (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CONSTRAINT trunk_name_unique UNIQUE
                    CONSTRAINT trunk_name_not_blank CHECK (btrim(name) <> ''),
    carrier         text NOT NULL,
    -- Requests from these addresses are trusted as coming from the carrier.
    sources         cidr[] NOT NULL
                    CONSTRAINT trunk_sources_not_empty CHECK (cardinality(sources) > 0),
    egress_host     inet NOT NULL,
    egress_port     integer NOT NULL DEFAULT 5060
                    CONSTRAINT trunk_egress_port_range CHECK (egress_port BETWEEN 1 AND 65535),
    transport       text NOT NULL DEFAULT 'udp'
                    CONSTRAINT trunk_transport_known CHECK (transport IN ('udp', 'tcp', 'tls')),
    -- How the carrier writes numbers: e164 +79181234567, plus_less 79181234567,
    -- national 89181234567, ten_digit 9181234567.
    number_format   text NOT NULL DEFAULT 'e164'
                    CONSTRAINT trunk_number_format_known
                    CHECK (number_format IN ('e164', 'plus_less', 'national', 'ten_digit')),
    -- Credentials for carriers that challenge us (both or neither).
    auth_username   text,
    auth_password   text,
    CONSTRAINT trunk_auth_both_or_neither
        CHECK ((auth_username IS NULL) = (auth_password IS NULL)),
    accepts_foreign_caller_id boolean NOT NULL DEFAULT false
);

CREATE TABLE district (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id  integer NOT NULL REFERENCES company (id) ON DELETE RESTRICT,
    name        text NOT NULL CONSTRAINT district_name_not_blank CHECK (btrim(name) <> ''),
    -- The published number shown to clients; a DID of the same company (FK below).
    caller_id   text NOT NULL CONSTRAINT district_caller_id_e164 CHECK (is_e164(caller_id)),
    active      boolean NOT NULL DEFAULT true,
    CONSTRAINT district_name_unique_per_company UNIQUE (company_id, name),
    CONSTRAINT district_id_company_unique UNIQUE (id, company_id)
);

CREATE TABLE did (
    number      text PRIMARY KEY CONSTRAINT did_number_e164 CHECK (is_e164(number)),
    company_id  integer NOT NULL REFERENCES company (id) ON DELETE RESTRICT,
    district_id integer NOT NULL,
    trunk_id    integer NOT NULL REFERENCES trunk (id) ON DELETE RESTRICT,
    label       text,
    CONSTRAINT did_number_company_unique UNIQUE (number, company_id),
    -- A DID rings a district of its own company.
    CONSTRAINT did_district_same_company FOREIGN KEY (district_id, company_id)
        REFERENCES district (id, company_id) ON DELETE RESTRICT
);
CREATE INDEX did_district_idx ON did (district_id);

-- Districts and DIDs point at each other: the district's caller ID must be one of the
-- company's DIDs, checked at commit so both rows can be inserted in one transaction.
ALTER TABLE district ADD CONSTRAINT district_caller_id_is_company_did
    FOREIGN KEY (caller_id, company_id) REFERENCES did (number, company_id)
    DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE manager (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id  integer NOT NULL REFERENCES company (id) ON DELETE RESTRICT,
    district_id integer NOT NULL,
    name        text NOT NULL CONSTRAINT manager_name_not_blank CHECK (btrim(name) <> ''),
    -- Hunting order within the district: lowest rings first.
    position    integer NOT NULL DEFAULT 1
                CONSTRAINT manager_position_positive CHECK (position > 0),
    -- Overrides the district number as caller ID; a DID of the same company.
    caller_id   text CONSTRAINT manager_caller_id_e164 CHECK (is_e164(caller_id)),
    active      boolean NOT NULL DEFAULT true,
    CONSTRAINT manager_district_same_company FOREIGN KEY (district_id, company_id)
        REFERENCES district (id, company_id) ON DELETE RESTRICT,
    CONSTRAINT manager_caller_id_is_company_did FOREIGN KEY (caller_id, company_id)
        REFERENCES did (number, company_id) ON DELETE RESTRICT
);
CREATE INDEX manager_district_idx ON manager (district_id, position);

-- A corporate SIM: a SIP endpoint whose username is its MSISDN in E.164.
CREATE TABLE sim (
    username    text PRIMARY KEY CONSTRAINT sim_username_e164 CHECK (is_e164(username)),
    manager_id  integer NOT NULL REFERENCES manager (id) ON DELETE RESTRICT,
    -- Digest HA1 = md5(username:realm:password); the password itself is never stored.
    ha1         text NOT NULL CONSTRAINT sim_ha1_md5_hex CHECK (ha1 ~ '^[0-9a-f]{32}$'),
    active      boolean NOT NULL DEFAULT true
);
CREATE INDEX sim_manager_idx ON sim (manager_id);
