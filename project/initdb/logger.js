// logger-service's own MongoDB user, made by the mongo image on its first
// start (mounted into /docker-entrypoint-initdb.d, where the entrypoint runs
// it with mongosh against its temporary server): readWrite on the service's
// database and no role anywhere else.
//
// The user, its password and the database come from the URL the service
// connects with (the mongo_url secret, /run/secrets/mongo_url:
// mongodb://USER:PASSWORD@HOST:PORT/DATABASE, the database being where the
// user is defined), so the two always agree. docs/security.md,
// "Least privilege".
const fs = require("fs");

const file = process.env.LOGGER_MONGO_URL_FILE || "/run/secrets/mongo_url";
const url = new URL(fs.readFileSync(file, "utf8").trim());
const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
if (!url.username || !url.password || !database) {
  throw new Error(`${file} is not mongodb://USER:PASSWORD@HOST:PORT/DATABASE`);
}
const user = decodeURIComponent(url.username);
db.getSiblingDB(database).createUser({
  user,
  pwd: decodeURIComponent(url.password),
  roles: [{ role: "readWrite", db: database }],
});
print(`logger.js: user ${user} made, readWrite on ${database}`);
