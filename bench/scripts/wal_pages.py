"""Which b-trees a create dirties: the WAL frames of N creates (after PRE creates, the WAL
checkpointed in between) mapped to table and index names through SQLite's `dbstat`.

    scripts/generate-bindings
    PYTHONPATH=target/bindings/python:bindings/tests/python python3 bench/scripts/wal_pages.py [PRE] [N]

The store is written through the Python bindings; the WAL is read and `dbstat` queried in a
second process (two SQLite libraries in one process would release each other's POSIX locks).
Keep N × pages per create under 1 000, SQLite's automatic checkpoint, or frames are lost.
Used for docs/benchmarks.md ("Issue 14, third pass").
"""

import os
import subprocess
import sys
import tempfile

from conftest import person, post, q, space_meta

INSPECT = r"""
import sqlite3, struct, sys
from collections import Counter
path, n = sys.argv[1], int(sys.argv[2])
wal = open(path + "-wal", "rb").read()
page_size = struct.unpack(">I", wal[8:12])[0]
pages, offset = [], 32
while offset + 24 <= len(wal):
    pages.append(struct.unpack(">I", wal[offset:offset + 4])[0])
    offset += 24 + page_size
names = dict(sqlite3.connect(path).execute("SELECT pageno, name FROM dbstat"))
print(f"{len(pages) / n:.1f} pages per create")
for name, count in Counter(names.get(p, "?") for p in pages).most_common():
    print(f"{count / n:5.2f} {name}")
"""


def main():
    pre = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    path = os.path.join(tempfile.mkdtemp(), "store.db")
    store = q.QuartierStore.open(path)
    me = person()
    space = store.create_space(space_meta(), me).id
    for i in range(pre):
        store.create_item(q.NewItem(space_id=space, author=me, content=post(f"Nachbarschaftsfest {i} im Hof")))
    checkpoint = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')"
    subprocess.run([sys.executable, "-c", checkpoint, path], check=True)
    for i in range(n):
        store.create_item(q.NewItem(space_id=space, author=me, content=post(f"Sommerfest mit Kuchen {i}")))
    subprocess.run([sys.executable, "-c", INSPECT, path, str(n)], check=True)


if __name__ == "__main__":
    main()
