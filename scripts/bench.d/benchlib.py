#!/usr/bin/env python3
"""Helpers for scripts/bench (Python 3.11 stdlib only).

  gen OUTDIR NAME:SIZE[:v1] ...   random data files (AES-CTR keystream from openssl, else
                                  os.urandom), streamed to disk and hashed on the way: prints
                                  "name size sha256hex v1id v1payloadhex" per file ("-" if not v1)
  seed BASE USER PASS ...         create v1 repositories and tags over HTTP, many connections
  startup BIN CONFIG RUNS         time exec -> "listening" line -> first /v1/_ping, RSS after
  sink PORTFILE DIR               an HTTP receiver that only puts request bodies on disk:
                                  splice(2) socket -> pipe -> DIR/body, fsync, unlink, 201.
                                  The upload ceiling: the same client and bytes as a registry
                                  push, with no HTTP framework, hashing or metadata
  stall BASE PATH COUNT            COUNT downloads of PATH that stop reading after the response
                                  head: holds them until stdin closes
  report RAW.tsv TXT MD META      the side-by-side table (medians, min-max, ratio, goal)
"""

import asyncio
import base64
import fcntl
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

CHUNK = 4 << 20


# -------------------------------------------------------------------- sink ---

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in the module only from Python 3.10 on Linux


def _read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        got = conn.recv(65536)
        if not got:
            return None, b""
        data += got
    return data.split(b"\r\n\r\n", 1)


def _sink_one(conn, path):
    head, rest = _read_head(conn)
    if head is None:
        return
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    r, w = os.pipe()
    drained = [0]

    def drain():
        # pipe -> file on its own thread (splice releases the GIL), so the socket is read
        # while the previous bytes go to the page cache, as a registry's writer thread does.
        while True:
            n = os.splice(r, fd, 1 << 20)
            if n == 0:
                return
            drained[0] += n

    try:
        fcntl.fcntl(w, F_SETPIPE_SZ, 1 << 20)
        os.write(fd, rest)
        got = len(rest)
        writer = threading.Thread(target=drain)
        writer.start()
        try:
            while got < length:
                n = os.splice(conn.fileno(), w, min(1 << 20, length - got))
                if n == 0:
                    break
                got += n
        finally:
            os.close(w)
            w = -1
            writer.join()
        os.fsync(fd)
        status = b"201 Created" if got == length and drained[0] + len(rest) == length else b"400 Bad Request"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
        os.close(fd)
        os.unlink(path)
    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def cmd_sink(args):
    portfile, outdir = args[0], args[1]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    while True:
        conn, _ = srv.accept()
        with conn:
            _sink_one(conn, os.path.join(outdir, "body"))


# --------------------------------------------------------------------- gen ---

def _gen_one(outdir, name, size, v1):
    path = os.path.join(outdir, name)
    h = hashlib.sha256()
    ph = None
    v1id = "-"
    if v1:
        v1id = os.urandom(32).hex()
        js = json.dumps({"id": v1id, "created": "2014-10-17T15:28:17.563811562Z",
                         "container_config": {"Cmd": ["/bin/sh"]}, "docker_version": "1.3.2",
                         "architecture": "amd64", "os": "linux", "Size": size},
                        separators=(",", ":")).encode()
        with open(path + ".json", "wb") as f:
            f.write(js)
        ph = hashlib.sha256(js + b"\n")
    proc = None
    try:
        proc = subprocess.Popen(
            ["openssl", "enc", "-aes-128-ctr", "-nosalt", "-K", os.urandom(16).hex(),
             "-iv", os.urandom(16).hex(), "-in", "/dev/zero"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        src = proc.stdout
    except OSError:
        src = None
    left = size
    with open(path, "wb") as f:
        while left > 0:
            n = min(CHUNK, left)
            buf = src.read(n) if src is not None else os.urandom(n)
            if not buf:
                raise SystemExit(f"gen: random source ended early for {name}")
            f.write(buf)
            h.update(buf)
            if ph is not None:
                ph.update(buf)
            left -= len(buf)
    if proc is not None:
        proc.kill()
        proc.wait()
    return f"{name} {size} {h.hexdigest()} {v1id} {ph.hexdigest() if ph else '-'}"


def cmd_gen(args):
    outdir, specs = args[0], args[1:]
    jobs = []
    for s in specs:
        parts = s.split(":")
        jobs.append((parts[0], int(parts[1]), len(parts) > 2 and parts[2] == "v1"))
    results = {}
    lock = threading.Lock()
    queue = list(jobs)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                name, size, v1 = queue.pop(0)
            line = _gen_one(outdir, name, size, v1)
            with lock:
                results[name] = line

    # openssl + hashing: two workers keep both cores busy.
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, _, _ in jobs:
        print(results[name])


# -------------------------------------------------------------------- seed ---

class Conn:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (Content-Length or chunked)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port)

    async def request(self, method, path, headers, body=b""):
        if self.w is None:
            await self.open()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.w.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self.w.drain()
        status_line = await self.r.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        hdrs = {}
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                n = int((await self.r.readline()).split(b";")[0], 16)
                if n == 0:
                    await self.r.readline()
                    break
                data += await self.r.readexactly(n)
                await self.r.readline()
        else:
            data = await self.r.readexactly(int(hdrs.get("content-length", "0")))
        if hdrs.get("connection", "").lower() == "close":
            self.w.close()
            self.r = self.w = None
        return status, hdrs, data


async def _seed(base, user, pw, prefix, repos, image_id, tag_repos, tags, conns, repo_conns):
    m = re.match(r"http://([^:/]+):(\d+)", base)
    host, port = m.group(1), int(m.group(2))
    basic = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
    # Phase 1: one repository record per repo (the v1 push start, as `docker push` does it).
    # Phase 2: the tags of the first `tag_repos` repositories, with the same Basic credentials.
    work = [("PUT", f"/v1/repositories/{user}/{prefix}{i:05d}/",
             {"Authorization": basic, "X-Docker-Token": "true",
              "Content-Type": "application/json"}, b"[]", 200)
            for i in range(repos)]
    tag_work = [("PUT", f"/v1/repositories/{user}/{prefix}{i:05d}/tags/t{t:02d}",
                 {"Authorization": basic, "Content-Type": "application/json"},
                 json.dumps(image_id).encode(), 200)
                for i in range(tag_repos) for t in range(tags)]
    stats = {}

    async def run(phase, items, nconns):
        idx = 0
        errors = []
        t0 = time.monotonic()

        async def worker():
            nonlocal idx
            c = Conn(host, port)
            while idx < len(items) and len(errors) < 5:
                method, path, hdrs, body, want = items[idx]
                idx += 1
                for attempt in range(3):
                    try:
                        st, _, data = await asyncio.wait_for(
                            c.request(method, path, hdrs, body), timeout=30)
                        break
                    except (ConnectionError, asyncio.IncompleteReadError, OSError):
                        c = Conn(host, port)
                        if attempt == 2:
                            raise
                    except asyncio.TimeoutError:
                        raise SystemExit(f"seed {phase}: no answer within 30 s to {method} {path}"
                                         " (server hung?)")
                if st != want:
                    errors.append(f"{method} {path}: {st} {data[:200]!r}")

        await asyncio.gather(*(worker() for _ in range(nconns)))
        dt = time.monotonic() - t0
        if errors:
            raise SystemExit(f"seed {phase}: " + "; ".join(errors))
        stats[phase] = (len(items), dt)

    await run("repos", work, repo_conns)
    if tag_work:
        await run("tags", tag_work, conns)
    return stats


def cmd_seed(args):
    """seed BASE USER PASS PREFIX NREPOS IMAGE_ID TAG_REPOS TAGS_PER_REPO CONNS [REPO_CONNS]

    Repository records go over REPO_CONNS connections (default 1): each such request ends in an
    index flush, and concurrent sled flush_async calls can deadlock (sled 0.34,
    spacejam/sled#1308). Prints "phase count seconds per_second" lines."""
    base, user, pw, prefix = args[0:4]
    repos, image_id, tag_repos, tags, conns = (int(args[4]), args[5], int(args[6]),
                                               int(args[7]), int(args[8]))
    repo_conns = int(args[9]) if len(args) > 9 else 1
    stats = asyncio.run(_seed(base, user, pw, prefix, repos, image_id, tag_repos, tags, conns,
                              repo_conns))
    for phase, (n, dt) in stats.items():
        print(f"{phase} {n} {dt:.3f} {n / dt:.1f}")


async def _seed_gc(base, user, pw, prefix, repos, conns):
    m = re.match(r"http://([^:/]+):(\d+)", base)
    host, port = m.group(1), int(m.group(2))
    auth = {}
    if user:
        auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}
    shared = os.urandom(2048)
    shared_d = "sha256:" + hashlib.sha256(shared).hexdigest()
    first = f"{user or 'bench'}/{prefix}{0:05d}"
    schema2 = "application/vnd.docker.distribution.manifest.v2+json"

    async def req(c, method, path, headers=None, body=b"", want=(200, 201, 202)):
        h = dict(auth)
        h.update(headers or {})
        for attempt in range(3):
            try:
                st, hdrs, data = await asyncio.wait_for(c.request(method, path, h, body), 60)
                break
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                c.r = c.w = None
                if attempt == 2:
                    raise
        if st not in want:
            raise SystemExit(f"seedgc: {method} {path}: {st} {data[:200]!r}")
        return st, hdrs

    async def upload(c, repo, data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        _, h = await req(c, "POST", f"/v2/{repo}/blobs/uploads/", want=(202,))
        loc = re.sub(r"^https?://[^/]+", "", h["location"])
        loc += ("&" if "?" in loc else "?") + "digest=" + d
        await req(c, "PUT", loc, {"Content-Type": "application/octet-stream"}, data, want=(201,))
        return d, len(data)

    async def mount_shared(c, repo):
        st, h = await req(c, "POST", f"/v2/{repo}/blobs/uploads/?mount={shared_d}&from={first}",
                          want=(201, 202))
        if st == 202:  # not mounted: upload the bytes to the session it opened
            loc = re.sub(r"^https?://[^/]+", "", h["location"])
            loc += ("&" if "?" in loc else "?") + "digest=" + shared_d
            await req(c, "PUT", loc, {"Content-Type": "application/octet-stream"}, shared,
                      want=(201,))

    async def image(c, repo, tag, layer_d, layer_size):
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Labels": {"repo": repo, "tag": tag}},
                             "rootfs": {"type": "layers", "diff_ids": [layer_d]}}).encode()
        cd, cs = await upload(c, repo, config)
        man = json.dumps({"schemaVersion": 2, "mediaType": schema2,
                          "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                     "size": cs, "digest": cd},
                          "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                      "size": layer_size, "digest": layer_d}]}).encode()
        await req(c, "PUT", f"/v2/{repo}/manifests/{tag}", {"Content-Type": schema2}, man,
                  want=(201,))
        return "sha256:" + hashlib.sha256(man).hexdigest()

    async def one(c, i):
        repo = f"{user or 'bench'}/{prefix}{i:05d}"
        if i == 0:
            await upload(c, repo, shared)
        else:
            await mount_shared(c, repo)
        await image(c, repo, "latest", shared_d, len(shared))
        if i % 2 == 0:
            # An image pushed and then deleted: its config, its own layer and its manifest
            # are garbage for the collector.
            own = os.urandom(2048)
            ld, ls = await upload(c, repo, own)
            md = await image(c, repo, "old", ld, ls)
            await req(c, "DELETE", f"/v2/{repo}/manifests/{md}", want=(202,))

    t0 = time.monotonic()
    c0 = Conn(host, port)
    await one(c0, 0)
    nxt = 1

    async def worker():
        nonlocal nxt
        c = Conn(host, port)
        while nxt < repos:
            i = nxt
            nxt += 1
            await one(c, i)

    await asyncio.gather(*(worker() for _ in range(conns)))
    return time.monotonic() - t0


def cmd_seedgc(args):
    """seedgc BASE USER PASS PREFIX NREPOS CONNS

    NREPOS v2 repositories USER/PREFIXnnnnn, each with one image tagged `latest` (a config of its
    own, a 2 KiB layer shared by all, mounted from the first); every other one also had an image
    `old` (its own config and layer) pushed and then deleted by digest: garbage for a collector.
    USER "" pushes without credentials (into namespace "bench"). Prints "gcseed count seconds
    per_second"."""
    base, user, pw, prefix = args[0:4]
    repos, conns = int(args[4]), int(args[5])
    dt = asyncio.run(_seed_gc(base, user, pw, prefix, repos, conns))
    print(f"gcseed {repos} {dt:.3f} {repos / dt:.1f}")


def cmd_clonetags(args):
    """clonetags ROOT USER PREFIX FROM TO TEMPLATE

    Gives repositories USER/PREFIX{FROM..TO-1} the same tags as USER/TEMPLATE by writing the
    very files the tag API wrote for the template (storage keys of src/storage/keys.rs, layout 3:
    repositories/<flat repo>/_tags/<tag>, _tagjson/<tag>, _images/<id> (which holds the <owner>
    of the member copy), and images/<id>/<owner>/_repos/<flat repo>, where <flat repo> is the
    name with "/" written "+").
    The index records of these repositories must already exist (made through the API)."""
    root, user, prefix = args[0], args[1], args[2]
    first, last, template = int(args[3]), int(args[4]), args[5]
    trepo = os.path.join(root, "repositories", f"{user}+{template}")
    files = [(sub, name) for sub in ("_tags", "_tagjson", "_images")
             for name in sorted(os.listdir(os.path.join(trepo, sub)))]
    # Each member names the copy the template holds: the key of its owner.
    owners = {}
    for (sub, name) in files:
        if sub == "_images":
            with open(os.path.join(trepo, sub, name)) as f:
                owners[name] = f.read()
    t0 = time.monotonic()
    n = 0
    for i in range(first, last):
        repo = f"{prefix}{i:05d}"
        d = os.path.join(root, "repositories", f"{user}+{repo}")
        for sub in ("_tags", "_tagjson", "_images"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for sub, name in files:
            # Hard links to the template's files: the same bytes, and safe because the storage
            # never modifies a file in place (every write is a new temp file renamed over it).
            os.link(os.path.join(trepo, sub, name), os.path.join(d, sub, name))
            n += sub == "_tags"
        for image_id, owner in owners.items():
            copy = os.path.join(root, "images", image_id, owner, "_repos")
            os.link(os.path.join(copy, f"{user}+{template}"), os.path.join(copy, f"{user}+{repo}"))
    dt = time.monotonic() - t0
    print(f"clonetags {n} {dt:.3f} {n / max(dt, 1e-9):.1f}")


# ------------------------------------------------------------------- stall ---

def cmd_stall(args):
    """stall BASE PATH COUNT

    Opens COUNT connections, asks each for PATH (a large blob), reads the response head of each
    (so every download has started: "200" is checked) and then nothing more, with a small
    receive buffer, so the server's sends stall at once. Prints "ready N" (N = downloads that
    answered 200) and holds the connections until stdin closes."""
    base, path, count = args[0], args[1], int(args[2])
    m = re.match(r"http://([^:/]+):(\d+)", base)
    host, port = m.group(1), int(m.group(2))
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.connect((host, port))
        s.sendall(req)
        socks.append(s)
    ok = 0
    for s in socks:
        s.settimeout(30)
        try:
            ok += s.recv(512).startswith(b"HTTP/1.1 200")
        except OSError:
            pass
    print(f"ready {ok}", flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


# ----------------------------------------------------------------- startup ---

def _rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmd_startup(args):
    """startup RUNS LOG PING_PATH PORT CMD...  (PORT "stdout": read Skiff's listening line)

    Per run prints: ms_to_listening_line (or -) ms_to_first_200_on_PING_PATH rss_kib_0.3s_later.
    REGISTRY_* and SKIFF_* variables are removed from the child's environment."""
    runs, logf, ping_path, port_arg, cmd = int(args[0]), args[1], args[2], args[3], args[4:]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("REGISTRY_") and not k.startswith("SKIFF_")}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for _ in range(runs):
        t0 = time.monotonic()
        deadline = t0 + 60
        with open(logf, "ab") as err:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE if port_arg == "stdout" else err,
                                 stderr=err, env=env, start_new_session=True)
        try:
            t_listen = None
            if port_arg == "stdout":
                port = None
                while time.monotonic() < deadline:
                    line = p.stdout.readline()
                    if not line:
                        raise SystemExit("startup: server exited before listening")
                    m = re.search(rb"listening on http://[^:]+:(\d+)", line)
                    if m:
                        t_listen = time.monotonic()
                        port = int(m.group(1))
                        break
                if port is None:
                    raise SystemExit("startup: no listening line within 60 s")
            else:
                port = int(port_arg)
            while True:
                if time.monotonic() > deadline:
                    raise SystemExit("startup: no answer within 60 s")
                if p.poll() is not None:
                    raise SystemExit("startup: server exited")
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("GET", ping_path)
                    r = c.getresponse()
                    r.read()
                    c.close()
                    if r.status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.001)
            t_ping = time.monotonic()
            time.sleep(0.3)
            rss = _rss_kib(p.pid)
            lst = f"{(t_listen - t0) * 1000:.1f}" if t_listen else "-"
            print(f"{lst} {(t_ping - t0) * 1000:.1f} {rss}", flush=True)
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ------------------------------------------------------------------ report ---

# id, label, unit, lower_is_better
ROWS = [
    ("push1g_open", "v2 blob push {big}, no auth", "MB/s", False),
    ("push1g_open_cpsync", "  cp {big} + fsync, just before each push above", "MB/s", False),
    ("push1g_open_sink", "  curl PUT {big} to the splice-to-disk receiver, just before", "MB/s", False),
    ("push1g_basic", "v2 blob push {big}, Basic", "MB/s", False),
    ("push1g_basic_cpsync", "  cp {big} + fsync, just before each push above", "MB/s", False),
    ("push1g_basic_sink", "  curl PUT {big} to the splice-to-disk receiver, just before", "MB/s", False),
    ("push8_open", "v2 blob push {nconc}x{small} concurrent, no auth", "MB/s", False),
    ("push8_basic", "v2 blob push {nconc}x{small} concurrent, Basic", "MB/s", False),
    ("pull1g_open", "v2 blob pull {big}, anonymous", "MB/s", False),
    ("pull1g_basic", "v2 blob pull {big}, Basic", "MB/s", False),
    ("pull8_open", "v2 blob pull {nconc}x{small} concurrent, anonymous", "MB/s", False),
    ("pull8_basic", "v2 blob pull {nconc}x{small} concurrent, Basic", "MB/s", False),
    ("base_sha", "baseline: sha256sum {big} (coreutils)", "MB/s", False),
    ("base_cp", "baseline: cp {big} (no fsync)", "MB/s", False),
    ("base_cpsync", "baseline: cp {big} + fsync", "MB/s", False),
    ("base_sink", "baseline: curl PUT {big} to a receiver that splices it to disk + fsync",
     "MB/s", False),
    ("v1push", "v1 layer push {big} (json+layer+checksum)", "MB/s", False),
    ("v1push_cpsync", "  cp {big} + fsync, just before each push above", "MB/s", False),
    ("v1push_sink", "  curl PUT {big} to the splice-to-disk receiver, just before", "MB/s", False),
    ("v1pull", "v1 layer pull {big}, anonymous", "MB/s", False),
]
for _auth, _albl in (("anon", "anonymous"), ("basic", "Basic"), ("bearer", "Bearer token")):
    for _m, _tool in (("get", "GET, wrk"), ("head", "HEAD, ab")):
        _k = f"man_{_m}_{_auth}"
        _l = f"manifest {_tool} -c64, {_albl}"
        ROWS += [(_k + "_rps", _l, "req/s", False),
                 (_k + "_p50", _l + " p50", "ms", True),
                 (_k + "_p99", _l + " p99", "ms", True)]
for _k, _l in (("v1tags_anon", "v1 GET /v1/repositories/R/tags, anonymous"),
               ("v1tags_basic", "v1 GET /v1/repositories/R/tags, Basic"),
               ("v1json_anon", "v1 GET /v1/images/ID/json, image in all {nrepos} repos"),
               ("v1json1_anon", "v1 GET /v1/images/ID/json, image in 1 repo"),
               ("v1search_anon", "v1 GET /v1/search?q= (10 hits of {nrepos} repos)")):
    ROWS += [(_k + "_rps", _l + " (wrk -c64)", "req/s", False), (_k + "_p99", _l + " p99", "ms", True)]
ROWS += [
    ("stall_man_rps", "manifest GET, wrk -c64, anonymous, while {nstall} downloads stall",
     "req/s", False),
    ("stall_man_p99", "manifest GET, wrk -c64, anonymous, while {nstall} downloads stall, p99",
     "ms", True),
    ("stall_rss", "RSS peak while {nstall} downloads stall (and manifest GETs)", "MiB", True),
]
ROWS += [
    ("gc_time", "gc of {ngc} v2 repos ({ngcgarbage} deleted images): time (Skiff online, Dist offline)",
     "s", True),
    ("gc_rss", "gc of {ngc} v2 repos: peak RSS of the collecting process (Skiff: whole server)",
     "MiB", True),
    ("gc_removed", "gc of {ngc} v2 repos: blobs removed (Distribution keeps manifests as blobs; "
     "Skiff drops a manifest's bytes at its DELETE)", "blobs", False),
    ("gcpush_idle", "v2 blob push {small}, Basic, no gc running", "MB/s", False),
    ("gcpush", "v2 blob push {small}, Basic, while gc runs back to back", "MB/s", False),
]
ROWS += [
    ("seed_repos", "seed: v1 repository records created", "repos/s", False),
    ("seed_tags", "seed: v1 tags created", "tags/s", False),
    ("rss_idle", "RSS idle (after start)", "MiB", True),
    ("rss_push", "RSS peak during workload 1 (v2 pushes)", "MiB", True),
    ("rss_v1push", "RSS peak during v1 {big} pushes", "MiB", True),
    ("rss_manifest", "RSS peak during workload 4 (manifest reads)", "MiB", True),
    ("rss_v1reads", "RSS peak during v1 tags + image json reads (workload 5)", "MiB", True),
    ("rss_search", "RSS peak during v1 search (workload 5)", "MiB", True),
    ("rss_big", "RSS after start-up with {nrepos} repos / {ntags} tags", "MiB", True),
    ("hwm", "VmHWM before the stalled-downloads row (peak of the other workloads)", "MiB", True),
    ("start_listen", "start-up to 'listening' line ({nrepos} repos)", "ms", True),
    ("start_ping", "start-up to first successful ping ({nrepos} repos for Skiff)", "ms", True),
]

# The S3 rows (bench.d/s3.sh): both registries on one Garage, requests alternating.
ROWS += [
    ("s3_push", "S3 (Garage): v2 blob push 256 MiB (Skiff Basic, Dist no auth)", "MB/s", False),
    ("s3_pull_first", "S3 (Garage): v2 blob pull 256 MiB, anonymous, first read of each blob", "MB/s", False),
    ("s3_pull", "S3 (Garage): v2 blob pull 256 MiB, anonymous, again (Skiff: its node's copy)", "MB/s", False),
    ("s3_push1g", "S3 (Garage): v2 blob push 1 GiB, once", "MB/s", False),
    ("s3_pull1g", "S3 (Garage): v2 blob pull 1 GiB, once, first read", "MB/s", False),
    ("s3_man_get_rps", "S3 (Garage): manifest GET, wrk -c64, anonymous", "req/s", False),
    ("s3_man_get_p50", "S3 (Garage): manifest GET, wrk -c64, anonymous, p50", "ms", True),
    ("s3_man_get_p99", "S3 (Garage): manifest GET, wrk -c64, anonymous, p99", "ms", True),
    ("s3_rss_idle", "S3 (Garage): RSS idle (after start and one manifest push)", "MiB", True),
    ("s3_rss_push", "S3 (Garage): RSS peak during the 256 MiB pushes", "MiB", True),
    ("s3_rss_push1g", "S3 (Garage): RSS peak during the 1 GiB push", "MiB", True),
    ("s3_rss_pull", "S3 (Garage): RSS peak during the 256 MiB pulls (first and again)", "MiB", True),
    ("s3_rss_pull1g", "S3 (Garage): RSS peak during the 1 GiB pull", "MiB", True),
]

ADJACENT = ("push1g_open", "push1g_basic", "v1push")

GOALS = {
    "push1g_basic": (">=1.5x Dist and >=0.9x cp+fsync", lambda r, s, d, m: r is not None and
                     r >= 1.5 and m.get("push1g_basic_share_cpsync", 0) >= 0.9),
    "push8_basic": (">=1.5x Dist", lambda r, s, d, m: r is not None and r >= 1.5),
    "pull1g_open": ("ratio>=1", lambda r, s, d, m: r is not None and r >= 1.0),
    "pull1g_basic": ("ratio>=1", lambda r, s, d, m: r is not None and r >= 1.0),
    "pull8_open": ("ratio>=1", lambda r, s, d, m: r is not None and r >= 1.0),
    "pull8_basic": ("ratio>=1", lambda r, s, d, m: r is not None and r >= 1.0),
    "v1push": (">=0.9x cp+fsync", lambda r, s, d, m: s is not None and
               m.get("v1push_share_cpsync", 0) >= 0.9),
    "rss_idle": ("<20 MiB", lambda r, s, d, m: s is not None and s < 20),
    "rss_push": ("<100 MiB", lambda r, s, d, m: s is not None and s < 100),
    "rss_v1push": ("<100 MiB", lambda r, s, d, m: s is not None and s < 100),
    "rss_manifest": ("<100 MiB", lambda r, s, d, m: s is not None and s < 100),
    "rss_v1reads": ("<100 MiB", lambda r, s, d, m: s is not None and s < 100),
    "rss_search": ("<100 MiB", lambda r, s, d, m: s is not None and s < 100),
    "hwm": ("<100 MiB", lambda r, s, d, m: s is not None and s < 100),
}
for _m in ("get", "head"):
    GOALS[f"man_{_m}_anon_rps"] = ("ratio>=5", lambda r, s, d, m: r is not None and r >= 5)
    for _a in ("basic", "bearer"):
        GOALS[f"man_{_m}_{_a}_rps"] = (
            ">=0.8x own anonymous",
            (lambda key: lambda r, s, d, m: s is not None and m.get(key) and s >= 0.8 * m[key])(
                f"man_{_m}_anon_rps"))
    for _a in ("anon", "basic", "bearer"):
        GOALS[f"man_{_m}_{_a}_p99"] = ("p99 < Distribution",
                                       lambda r, s, d, m: r is not None and r < 1)
GOALS["s3_push"] = (">=2x Dist", lambda r, s, d, m: r is not None and r >= 2.0)
GOALS["s3_pull"] = (">=1.2x Dist", lambda r, s, d, m: r is not None and r >= 1.2)
GOALS["s3_pull_first"] = (">=1.2x Dist", lambda r, s, d, m: r is not None and r >= 1.2)
# Memory flat however large the blob: the 1 GiB peaks within 16 MiB of the 256 MiB ones.
GOALS["s3_rss_push1g"] = ("flat: <= 256 MiB row + 16", lambda r, s, d, m: s is not None and
                          m.get("s3_rss_push") is not None and s <= m["s3_rss_push"] + 16)
GOALS["s3_rss_pull1g"] = ("flat: <= 256 MiB row + 16", lambda r, s, d, m: s is not None and
                          m.get("s3_rss_pull") is not None and s <= m["s3_rss_pull"] + 16)
GOALS["gc_time"] = ("< Distribution", lambda r, s, d, m: r is not None and r < 1)
GOALS["gcpush"] = (">=0.8x own, gc idle", lambda r, s, d, m: s is not None and
                   m.get("gcpush_idle") and s >= 0.8 * m["gcpush_idle"])
GOALS["stall_man_p99"] = ("p99 < Distribution", lambda r, s, d, m: r is not None and r < 1)
GOALS["stall_rss"] = ("< Distribution", lambda r, s, d, m: r is not None and r < 1)
GOALS["v1tags_basic_rps"] = (">=0.8x own anonymous", lambda r, s, d, m: s is not None and
                             m.get("v1tags_anon_rps") and s >= 0.8 * m["v1tags_anon_rps"])


def _fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _cell(vals, note):
    if vals:
        med = statistics.median(vals)
        if len(vals) > 1:
            return med, f"{_fmt(med)} ({_fmt(min(vals))}-{_fmt(max(vals))})"
        return med, _fmt(med)
    return None, (note or "-")


def cmd_report(args):
    raw, txt_out, md_out = args[0], args[1], args[2]
    meta = dict(a.split("=", 1) for a in args[3:])
    vals, notes = {}, {}
    with open(raw) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            key, side, v = parts[0], parts[1], parts[2]
            if v.startswith("NA:"):
                notes[(key, side)] = "n/a (" + v[3:] + ")"
                continue
            try:
                vals.setdefault((key, side), []).append(float(v))
            except ValueError:
                notes[(key, side)] = v
    skiff_med = {}
    for key, *_ in ROWS:
        if vals.get((key, "skiff")):
            skiff_med[key] = statistics.median(vals[(key, "skiff")])
        elif vals.get((key, "base")):
            skiff_med[key] = statistics.median(vals[(key, "base")])
    # Pushes with a copy of the same bytes made just before each one: the median of the
    # per-repeat shares (push / that copy), for Skiff.
    for key in ADJACENT:
        for b in ("cpsync", "sink"):
            pushes, bases = vals.get((key, "skiff"), []), vals.get((f"{key}_{b}", "skiff"), [])
            if pushes and len(pushes) == len(bases) and all(bases):
                skiff_med[f"{key}_share_{b}"] = statistics.median(
                    p / q for p, q in zip(pushes, bases))
    table = []
    fmt_args = {"big": meta.get("big", "1 GiB"), "small": meta.get("small", "128 MiB"),
                "nconc": meta.get("nconc", "8"), "nstall": f"{int(meta.get('nstall', 1000)):,}",
                "nrepos": f"{int(meta.get('nrepos', 10000)):,}",
                "ntags": f"{int(meta.get('ntags', 100000)):,}",
                "ngc": f"{int(meta.get('ngc', 10000)):,}",
                "ngcgarbage": f"{int(meta.get('ngc', 10000)) // 2:,}"}
    for key, label, unit, lower in ROWS:
        label = label.format(**fmt_args)
        sides = [(s, vals.get((key, s)), notes.get((key, s))) for s in ("skiff", "dist", "base")]
        if not any(v or n for _, v, n in sides):
            continue
        if vals.get((key, "base")):
            _, cell = _cell(vals[(key, "base")], None)
            table.append((f"{label} [{unit}]", cell, cell, "(same machine)", ""))
            continue
        s_med, s_cell = _cell(vals.get((key, "skiff")), notes.get((key, "skiff")))
        d_med, d_cell = _cell(vals.get((key, "dist")), notes.get((key, "dist")))
        ratio = s_med / d_med if (s_med is not None and d_med) else None
        rtxt = f"{ratio:.2f}x" if ratio is not None else "-"
        if key.endswith(("_cpsync", "_sink")):
            rtxt = "(baseline)"
        elif key in ADJACENT and s_med is not None:
            # Against copies of the same bytes made just before each push (the goal's terms).
            parts = [rtxt] if ratio is not None else []
            for b, bl in (("cpsync", "cp+fsync"), ("sink", "curl to disk")):
                if f"{key}_share_{b}" in skiff_med:
                    parts.append(f"{100 * skiff_med[f'{key}_share_{b}']:.0f}% of {bl}")
            if key == "v1push" and skiff_med.get("base_sha"):
                parts.append(f"{100 * s_med / skiff_med['base_sha']:.0f}% of sha256sum")
            rtxt = "; ".join(parts) or "-"
        elif key == "v1pull" and s_med is not None:
            parts = []
            for b, bl in (("base_cp", "cp"), ("base_sha", "sha256sum")):
                if skiff_med.get(b):
                    parts.append(f"{100 * s_med / skiff_med[b]:.0f}% of {bl}")
            rtxt = ", ".join(parts) or "-"
        goal = ""
        if key in GOALS:
            gtxt, fn = GOALS[key]
            try:
                ok = fn(ratio, s_med, d_med, skiff_med)
            except Exception:  # noqa: BLE001 - a goal that cannot be evaluated is shown as '?'
                ok = None
            needs_dist = "Dist" in gtxt or "ratio" in gtxt
            if s_med is None or (needs_dist and d_med is None):
                goal = f"{gtxt}: ?"
            else:
                goal = f"{gtxt}: {'yes' if ok else 'NO'}"
        table.append((f"{label} [{unit}]", s_cell, d_cell, rtxt, goal))

    head = ("workload", "Skiff", "Distribution 2.8", "ratio (Skiff/Dist)", "goal")
    widths = [max(len(r[i]) for r in table + [head]) for i in range(5)]
    lines = [" | ".join(h.ljust(widths[i]) for i, h in enumerate(head)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) for r in table]
    legend = (
        "Medians of the repeats, min-max in parentheses. MB = 10^6 bytes. ratio = Skiff / "
        "Distribution; for ms and MiB rows lower is better. Baseline rows are the same machine's "
        "tools on the same bytes, shown in both columns. Indented rows copy the bytes of the push "
        "above just before each repeat of it, to the same disk and in the same state of that "
        "disk (it writes fast while fresh and slows down after a few GiB); a push's share of "
        "them is the median of the per-repeat shares.")
    text = "\n".join(lines) + "\n\n" + legend + "\n"
    with open(txt_out, "w") as f:
        f.write(text)
    md = []
    if meta:
        md.append("Measured " + meta.get("date", "") + " on " + meta.get("machine", "") + "; " +
                  meta.get("versions", "") + "; " + meta.get("settings", "") + ".")
        md.append("")
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "|".join(["---"] + ["---:"] * 3 + ["---"]) + "|")
    for r in table:
        md.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    md.append("")
    md.append(legend)
    if meta.get("notes"):
        md.append("")
        md.append(meta["notes"])
    with open(md_out, "w") as f:
        f.write("\n".join(md) + "\n")
    sys.stdout.write(text)


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    {"gen": cmd_gen, "seed": cmd_seed, "clonetags": cmd_clonetags, "startup": cmd_startup,
     "report": cmd_report, "sink": cmd_sink, "stall": cmd_stall,
     "seedgc": cmd_seedgc}[cmd](args)


if __name__ == "__main__":
    main()
