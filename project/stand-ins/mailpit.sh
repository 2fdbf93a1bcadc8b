#!/bin/sh
# /mailpit in the mailpit stand-in: no arguments run the mail catcher
# (MailDev), `readyz` is the health check. Nothing else of mailpit's CLI.
set -eu

# mailpit's [IP]:PORT variables, split into MailDev's address and port.
smtp=${MP_SMTP_BIND_ADDR:-0.0.0.0:1025}
ui=${MP_UI_BIND_ADDR:-0.0.0.0:8025}
host() { h=${1%:*}; h=${h#[}; h=${h%]}; echo "${h:-0.0.0.0}"; }
port() { echo "${1##*:}"; }

case ${1:-} in
  "")
    exec node /usr/local/lib/node_modules/maildev/bin/maildev \
      --ip "$(host "$smtp")" --smtp "$(port "$smtp")" \
      --web-ip "$(host "$ui")" --web "$(port "$ui")"
    ;;
  readyz)
    # Ready when the web UI answers; a wildcard address is asked on loopback.
    h=$(host "$ui")
    case $h in 0.0.0.0) h=127.0.0.1 ;; ::) h=::1 ;; esac
    exec node -e '
      const req = require("http").get({host: process.argv[1], port: process.argv[2], path: "/healthz", timeout: 2000},
        (res) => process.exit(res.statusCode === 200 ? 0 : 1));
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => process.exit(1));' "$h" "$(port "$ui")"
    ;;
  *)
    echo "mailpit (stand-in): only \`/mailpit\` and \`/mailpit readyz\` are understood" >&2
    exit 2
    ;;
esac
