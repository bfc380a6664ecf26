UPDATE trunk SET
       name = COALESCE(%(rename)s, name),
       carrier = COALESCE(%(carrier)s, carrier),
       sources = COALESCE(%(sources)s::cidr[], sources),
       egress_host = COALESCE(%(egress_host)s::inet, egress_host),
       egress_port = COALESCE(%(egress_port)s, egress_port),
       transport = COALESCE(%(transport)s, transport),
       number_format = COALESCE(%(number_format)s, number_format),
       auth_username = COALESCE(%(auth_username)s, auth_username),
       auth_password = COALESCE(%(auth_password)s, auth_password),
       accepts_foreign_caller_id = COALESCE(%(accepts_foreign_caller_id)s, accepts_foreign_caller_id),
       is_default = COALESCE(%(is_default)s, is_default)
 WHERE name = %(key)s
RETURNING name
