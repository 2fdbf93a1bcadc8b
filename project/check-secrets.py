#!/usr/bin/env python3
"""`make check-secrets` (part of `make lint`): no password, key or token in
any committed file (docs/security.md, "Secrets").

Scans every file git tracks for:
  - credentials inside a URL (scheme://user:password@host);
  - a literal value given to a secret-looking setting (PASSWORD, SECRET,
    TOKEN_KEY, API_KEY, ...): `NAME=value`, `NAME: value`, `NAME := value`,
    and outside Rust `"password": "value"`;
  - a private key block, a signed JWT, a bcrypt hash outside the migrations.

A value is not a secret when it is empty, an interpolation (`${...}`,
`$NAME`, `$(...)`, `%s`), a placeholder (`<...>`, `...`, `change-me...`),
or a file path (the NAME_FILE variables). A line of a test that needs a
fixture shaped like a secret carries the comment `check-secrets: a test
fixture`. The only credential that may appear is the trial
user's, named below: it is public by design, documented in the README and
created only where the seed is switched on.
"""

import re
import subprocess
import sys

# The documented trial login, and the RabbitMQ default that exists only on
# a local server and only from localhost.
PUBLIC = {"verysecret", "guest"}
# The wrong passwords of the README's examples of a failed login.
EXAMPLES = {"nope"}

URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s:@'\"`]+):([^@/\s'\"`]*)@")
# An environment-style setting: an upper-case name, not inside `${...}`.
SETTING = re.compile(
    r"""(?x)
    (?<![${A-Za-z0-9_])
    (?P<name>[A-Z0-9_]*(PASSWORD|PASSWD|SECRET|TOKEN_KEY|API_KEY|PRIVATE_KEY|ACCESS_KEY)[A-Z0-9_]*)
    ["']?\s*(?::=|=|:)\s*
    (?P<value>"[^"]*"|'[^']*'|[^\s#,;)\]}]+)
    """
)
# A quoted value for a `password`-like key in JSON or YAML (not in Rust,
# whose tests hold wrong passwords on purpose).
QUOTED = re.compile(
    r"""(?ix)
    ["']?(?P<name>password|passwd|secret|token_key|api_key)["']?\s*:\s*
    (?P<value>"[^"]*"|'[^']*')
    """
)
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
# Where a bcrypt hash belongs: the migration that seeds the trial user.
BCRYPT_ALLOWED = ("authentication-service/migrations/",)
ALLOW = "check-secrets: a test fixture"
SKIP = ("Cargo.lock", ".png", ".svg", ".ico")


def is_placeholder(value: str, reference_ok: bool = True) -> bool:
    v = value.strip().strip("\"'")
    return (
        v == ""
        or v.startswith(("$", "<", "...", "/", "./", "{", "(", "%", "?", "-", "&"))
        # The templates' and examples' values to replace.
        or v.startswith("change-me")
        # A name standing for the value, as in USER:PASSWORD.
        or re.fullmatch(r"[A-Z][A-Z_]*", v) is not None
        or v in PUBLIC
        or v in EXAMPLES
        or v.lower() in {"none", "null", "true", "false", "required", "redacted", "(redacted)"}
        or v.endswith(("_FILE", "_file"))
        # A path, such as the file a NAME_FILE names.
        or re.fullmatch(r"[\w.-]+(/[\w.-]+)+", v) is not None
        # A reference to another setting or a code expression, not a value.
        or reference_ok
        and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.:]*(\(\)|\[.*\])?", v) is not None
        and not re.search(r"\d", v)
    )


def findings(path: str, text: str):
    for number, line in enumerate(text.splitlines(), 1):
        # A test's fixture that must look like a secret says so.
        if ALLOW in line:
            continue
        for m in URL_CREDENTIALS.finditer(line):
            password = m.group(2)
            if not is_placeholder(password, reference_ok=False):
                yield number, f"credentials in a URL ({m.group(1)}:…@)"
        for m in SETTING.finditer(line):
            if not is_placeholder(m.group("value")):
                yield number, f"a literal value for {m.group('name')}"
        if not path.endswith(".rs"):
            for m in QUOTED.finditer(line):
                if not is_placeholder(m.group("value")):
                    yield number, f"a literal value for {m.group('name')}"
        if PRIVATE_KEY.search(line):
            yield number, "a private key"
        if JWT.search(line):
            yield number, "a signed token (JWT)"
        if BCRYPT.search(line) and not path.startswith(BCRYPT_ALLOWED):
            yield number, "a bcrypt hash"


def self_test() -> int:
    """The scan finds what it must and nothing it must not."""
    found = [
        'DATABASE_URL=postgres://postgres:password@127.0.0.1:5432/users',
        '"postgres://auth:hunter2@db/users"',
        "MAIL_PASSWORD=hunter2",
        "  RABBITMQ_PASSWORD: s3cr3t",
        '{"password": "hunter2"}',
        "-----BEGIN RSA PRIVATE KEY-----",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhQGV4YW1wbGUuY29tIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg",
        "$2b$10$" + "a" * 53,
    ]
    clean = [
        "DATABASE_URL_FILE=/run/secrets/database_url",
        "AMQP_URL: amqp://${RABBITMQ_USER:?set it}:${RABBITMQ_PASSWORD:?set it}@rabbitmq:5672/%2f",
        "POSTGRES_PASSWORD=change-me-postgres",
        "MAIL_PASSWORD=",
        '[ -n "${TOKEN_KEY:-}" ]',
        "printf 'postgres://%s:%s@postgres:5432/users'",
        "# (postgres://USER:PASSWORD@postgres:5432/users)",
        '{"email": "admin@example.com", "password": "verysecret"}',
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        "let password = config.password.clone();",
    ]
    bad = [line for line in found if not list(findings("x.yml", line))]
    bad += [line for line in clean if list(findings("x.yml", line))]
    for line in bad:
        print(f"check-secrets self-test: wrong verdict on {line!r}")
    return 1 if bad else 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    files = subprocess.run(
        ["git", "ls-files", "-z"], check=True, capture_output=True, text=True
    ).stdout.split("\0")
    problems = []
    for path in filter(None, files):
        if path.endswith(SKIP) or path == "project/check-secrets.py":
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        problems += [f"{path}:{n}: {what}" for n, what in findings(path, text)]
    for problem in problems:
        print(problem)
    print(f"check-secrets: {len(files) - 1} files, {len(problems)} findings")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
