#!/usr/bin/env python3
"""Writes the seed layers of the tar_apply fuzz target into
testdata/fuzz/tar_apply/ (seed-*.tar). Deterministic; run it again after
changing it and commit the results. The hostile tars of testdata/hostile/
are seeds too (copied as seed-hostile-*.tar).

Usage: tests/fuzz/make_tar_seeds.py [OUT_DIR]
"""
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

# Pad only to the end-of-archive blocks, not to 10 KiB records: small seeds
# keep the fuzzer's inputs short.
tarfile.RECORDSIZE = 2 * tarfile.BLOCKSIZE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def info(name, kind=tarfile.REGTYPE, mode=0o644, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = 1700000000
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def d(name, mode=0o755, **kw):
    return (info(name, tarfile.DIRTYPE, mode, **kw), None)


def f(name, data=b"", mode=0o644, **kw):
    return (info(name, tarfile.REGTYPE, mode, size=len(data), **kw), data)


def sym(name, target):
    return (info(name, tarfile.SYMTYPE, 0o777, linkname=target), None)


def hard(name, target):
    return (info(name, tarfile.LNKTYPE, 0o644, linkname=target), None)


def dev(name, kind, major, minor):
    return (info(name, kind, 0o600, devmajor=major, devminor=minor), None)


def write(path, entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    with open(path, "wb") as out:
        out.write(buf.getvalue())


SEEDS = {
    "basic": [
        d("etc"), f("etc/hostname", b"box\n"), f("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        d("bin"), f("bin/sh", b"\x7fELF", 0o755), sym("bin/ash", "sh"), hard("bin/busybox", "bin/sh"),
        d("tmp", 0o1777), f("usr/local/bin/tool", b"#!/bin/sh\n", 0o4755),
    ],
    "whiteouts": [
        d("etc"), f("etc/.wh.motd"), d("var/cache"), f("var/cache/.wh..wh..opq"),
        f("var/cache/new", b"kept"), f(".wh.removed-dir"), f("usr/lib/.wh.libold.so"),
    ],
    "opaque-after-entries": [
        d("opt/app"), f("opt/app/a", b"a"), f("opt/app/b", b"b"), f("opt/app/.wh..wh..opq"),
        f("opt/app/c", b"c"), d("opt/app/sub"), f("opt/app/sub/.wh..wh..opq"),
    ],
    "whiteout-then-recreate": [
        f(".wh.data"), d("data"), f("data/file", b"new"), f(".wh.link"), sym("link", "data/file"),
    ],
    "aufs-metadata": [
        d(".wh..wh.plnk"), f(".wh..wh.plnk/123.456", b"x"), hard("x", ".wh..wh.plnk/123.456"),
        f(".wh..wh.aufs"), d(".wh..wh.orph"),
    ],
    "usrmerge": [
        d("usr/lib"), sym("lib", "usr/lib"), sym("lib64", "/usr/lib"), f("lib/libc.so.6", b"libc"),
        f("lib64/ld.so", b"ld"), sym("usr/lib/abs", "/etc"), f("usr/lib/abs/conf", b"inside root"),
    ],
    "replace-types": [
        d("x"), f("x/inner", b"1"), f("x", b"file replaces dir"), sym("y", "x"), d("y"),
        f("z", b"z"), hard("z2", "z"), f("z", b"replaced"), sym("z", "z2"),
    ],
    "devices-fifo": [
        dev("dev/null", tarfile.CHRTYPE, 1, 3), dev("dev/sda", tarfile.BLKTYPE, 8, 0),
        (info("run/fifo", tarfile.FIFOTYPE, 0o600), None), dev("dev/whiteout", tarfile.CHRTYPE, 0, 0),
    ],
    "pax-xattrs": [
        f("bin/ping", b"ping", 0o755, pax_headers={
            "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12,
            "SCHILY.xattr.user.comment": "hello"}),
        d("data", pax_headers={"SCHILY.xattr.trusted.overlay.opaque": "y",
                               "SCHILY.xattr.user.overlay.opaque": "y"}),
        f("acl", b"", pax_headers={"SCHILY.acl.access": "user::rw-,group::r--,other::r--",
                                   "LIBARCHIVE.xattr.user.b64": "aGVsbG8="}),
        f("timed", b"t", pax_headers={"mtime": "1700000000.123456789", "atime": "-1"}),
    ],
    "owners-modes": [
        d("home/u", 0o700, uid=1000, gid=1000, uname="u", gname="u"),
        f("home/u/secret", b"s", 0o600, uid=1000, gid=1000), d("locked", 0o000),
        f("setgid", b"", 0o2755), d("sticky", 0o1777), f("nomode", b"", 0o000),
    ],
    "gnu-longnames": [
        d("a" * 100), f("a" * 100 + "/" + "b" * 150, b"long"),
        sym("l" * 120, "t" * 200), hard("h" * 110, "a" * 100 + "/" + "b" * 150),
    ],
    "dot-names": [
        d("./"), f("./a/./b//c", b"c"), d("./a/"), f("a/b/../b/d", b"dotdot"), f("..", b""),
    ],
}

# GNU tar formats: long names through ././@LongLink, and old-GNU sparse.
GNU_SEEDS = {"gnu-format": SEEDS["gnu-longnames"] + [f("plain", b"gnu")]}


def sparse_seed(path):
    """A GNU tar --sparse layer (python's tarfile cannot write one)."""
    tar = shutil.which("tar")
    if tar is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "sparse"), "wb") as out:
            out.write(b"head")
            out.seek(1 << 20)
            out.write(b"tail")
        subprocess.run([tar, "--sparse", "--format=pax", "--owner=0", "--group=0",
                        "--numeric-owner", "--mtime=@1700000000", "--blocking-factor=1",
                        "-C", tmp, "-cf", path, "sparse"], check=True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "testdata/fuzz/tar_apply")
    os.makedirs(out, exist_ok=True)
    for name, entries in SEEDS.items():
        write(os.path.join(out, "seed-%s.tar" % name), entries)
    for name, entries in GNU_SEEDS.items():
        write(os.path.join(out, "seed-%s.tar" % name), entries, tarfile.GNU_FORMAT)
    write(os.path.join(out, "seed-empty.tar"), [])
    sparse_seed(os.path.join(out, "seed-sparse.tar"))
    hostile = os.path.join(ROOT, "testdata/hostile")
    for name in sorted(os.listdir(hostile)):
        if name.endswith(".tar"):
            shutil.copyfile(os.path.join(hostile, name), os.path.join(out, "seed-hostile-" + name))


if __name__ == "__main__":
    main()
