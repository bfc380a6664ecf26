INSERT INTO trunk (name, carrier, sources, egress_host, egress_port, transport, number_format,
                   auth_username, auth_password, accepts_foreign_caller_id, is_default)
VALUES (%(name)s, %(carrier)s, %(sources)s::cidr[], %(egress_host)s::inet,
        COALESCE(%(egress_port)s, 5060), COALESCE(%(transport)s, 'udp'),
        COALESCE(%(number_format)s, 'e164'), %(auth_username)s, %(auth_password)s,
        COALESCE(%(accepts_foreign_caller_id)s, false), COALESCE(%(is_default)s, false))
RETURNING name
