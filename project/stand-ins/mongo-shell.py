#!/opt/secantusdb/bin/python
"""NOT the real mongosh. The mongo stand-in's health check only:

    mongosh [--quiet] [mongodb://HOST:PORT] --eval "db.adminCommand('ping').ok"

prints 1 and exits 0 when the server answers ping (default 127.0.0.1:27017),
exits 1 when it does not; any other use exits 2. It understands nothing else.
"""
import re
import sys

from pymongo import MongoClient

PING = re.compile(r"""db\.adminCommand\(\s*(['"]ping['"]|\{\s*ping\s*:\s*1\s*\})\s*\)\.ok;?""")


def main(args):
    url, expr = "mongodb://127.0.0.1:27017", None
    while args:
        arg = args.pop(0)
        if arg == "--quiet":
            continue
        if arg == "--eval" and args:
            expr = args.pop(0).strip()
        elif arg.startswith("mongodb://"):
            url = arg
        else:
            expr = None
            break
    if expr is None or not PING.fullmatch(expr):
        print("mongosh (stand-in): only --eval \"db.adminCommand('ping').ok\" is understood",
              file=sys.stderr)
        return 2
    try:
        client = MongoClient(url, directConnection=True, serverSelectionTimeoutMS=2000)
        ok = client.admin.command("ping").get("ok")
    except Exception as err:  # any failure means: not healthy
        print(f"mongosh (stand-in): {err}", file=sys.stderr)
        return 1
    print(int(ok))
    return 0 if ok == 1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
