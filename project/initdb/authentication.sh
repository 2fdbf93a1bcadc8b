# authentication-service's own PostgreSQL role, made by the postgres image on
# its first start (mounted into /docker-entrypoint-initdb.d, where the
# entrypoint sources it against its temporary server): a login role that is
# no superuser and can create neither roles nor databases, owning the
# service's database (so its migrations may create the tables there) and
# the only role besides the superuser that may connect to it.
#
# The role, its password and the database come from the URL the service
# connects with (the database_url secret, /run/secrets/database_url), so the
# two always agree. docs/security.md, "Least privilege".
# shellcheck shell=bash

url_file=${AUTH_DATABASE_URL_FILE:-/run/secrets/database_url}
url=$(<"$url_file")
if ! [[ $url =~ ^postgres(ql)?://([^:@/]+):([^@/]+)@[^/]+/([^?/]+) ]]; then
  echo "authentication.sh: $url_file is not postgres://ROLE:PASSWORD@HOST/DATABASE" >&2
  exit 1
fi
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres --no-psqlrc \
  -v role="${BASH_REMATCH[2]}" -v password="${BASH_REMATCH[3]}" -v db="${BASH_REMATCH[4]}" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'password';
ALTER DATABASE :"db" OWNER TO :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
echo "authentication.sh: role ${BASH_REMATCH[2]} made, owner of database ${BASH_REMATCH[4]}"
unset url url_file
