#!/usr/bin/env python3
"""Counts the commits onto each blob of a tree, from the kernel (inotify),
independently of the tool: a blob is committed by renaming (or exchanging)
its staged version onto its name, which the kernel reports as IN_MOVED_TO
for that name.  Temporaries (".NAME.renc-tmp.TAG") are not blobs.

  commit_watch.py ROOT OUT READY

watches ROOT and every folder under it (the tree's folders exist before the
run), writes "ready" to READY once watching, and on SIGTERM writes one line
"COUNT<TAB>REL" a name that was moved onto to OUT (events queued by then are
read first)."""
import ctypes, os, signal, struct, sys

IN_MOVED_TO, IN_Q_OVERFLOW = 0x80, 0x4000
libc = ctypes.CDLL(None, use_errno=True)
root, out, ready = sys.argv[1], sys.argv[2], sys.argv[3]
fd = libc.inotify_init1(os.O_NONBLOCK)
if fd < 0:
    sys.exit("inotify_init1: errno %d" % ctypes.get_errno())
dirs = {}
for d, _, _ in os.walk(root):
    wd = libc.inotify_add_watch(fd, d.encode(), IN_MOVED_TO)
    if wd < 0:
        sys.exit("inotify_add_watch %s: errno %d" % (d, ctypes.get_errno()))
    dirs[wd] = os.path.relpath(d, root)
counts, overflow = {}, [False]


def drain():
    while True:
        try:
            buf = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        at = 0
        while at < len(buf):
            wd, mask, _, ln = struct.unpack_from("iIII", buf, at)
            name = buf[at + 16:at + 16 + ln].rstrip(b"\0").decode()
            at += 16 + ln
            if mask & IN_Q_OVERFLOW:
                overflow[0] = True
            elif ".renc-tmp." not in name and wd in dirs:
                rel = os.path.normpath(os.path.join(dirs[wd], name))
                counts[rel] = counts.get(rel, 0) + 1


stop = [False]
signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
open(ready, "w").write("ready\n")
import select
while not stop[0]:
    select.select([fd], [], [], 0.2)
    drain()
drain()
with open(out, "w") as f:
    if overflow[0]:
        f.write("OVERFLOW\t-\n")
    for rel in sorted(counts):
        f.write("%d\t%s\n" % (counts[rel], rel))
