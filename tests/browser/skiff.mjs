// A real Skiff for the browser tests, and the registry clients that fill it: a fresh data dir
// and registry.toml, `target/debug/skiff serve` on 127.0.0.1:0, pushes over v2 (blob uploads,
// manifests, an index of two platforms) and over v1 (the Docker 1.3 sequence of
// /work/shared/spec/v1-protocol.md §4.7, as tests/it/common's push_13 drives it).
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = process.env.SKIFF_BIN || join(ROOT, "target/debug/skiff");

export function sha256(buf) {
  return "sha256:" + createHash("sha256").update(buf).digest("hex");
}

export function basic(user, password) {
  return "Basic " + Buffer.from(`${user}:${password}`).toString("base64");
}

export class Skiff {
  /** `extra`: more registry.toml lines. */
  static async start(extra = []) {
    const dir = mkdtempSync(join(tmpdir(), "skiff-ui-"));
    const config = join(dir, "registry.toml");
    writeFileSync(
      config,
      [
        `listen = "127.0.0.1:0"`,
        `data_dir = ${JSON.stringify(join(dir, "data"))}`,
        `[index]`,
        `pbkdf2_rounds = 20000`,
        `registration = "open"`,
        `[ui]`,
        `static_dir = ${JSON.stringify(join(ROOT, "static"))}`,
        ...extra,
        ``,
      ].join("\n")
    );
    const child = spawn(BIN, ["--config", config, "serve"], {
      env: { ...process.env, SKIFF_LOG: "warn" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const url = await new Promise((ok, fail) => {
      let buf = "";
      const timer = setTimeout(() => fail(new Error("skiff did not print its address in 20 s")), 20000);
      child.on("exit", (code) => fail(new Error(`skiff exited with ${code}`)));
      child.stdout.on("data", (d) => {
        buf += d;
        const m = buf.match(/skiff listening on (\S+)/);
        if (m) {
          clearTimeout(timer);
          ok(m[1]);
        }
      });
    });
    child.stdout.resume();
    const s = new Skiff(dir, config, child, url);
    const deadline = Date.now() + 20000;
    for (;;) {
      try {
        if ((await fetch(`${url}/readyz`)).status === 200) break;
      } catch (e) {
        // not yet
      }
      if (Date.now() > deadline) throw new Error("/readyz never answered 200");
      await new Promise((r) => setTimeout(r, 100));
    }
    return s;
  }

  constructor(dir, config, child, url) {
    this.dir = dir;
    this.config = config;
    this.child = child;
    this.url = url;
    this.host = new URL(url).host;
  }

  stop() {
    this.child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The CLI against the running server (over its socket). */
  cli(args, stdin = "") {
    const r = spawnSync(BIN, ["--config", this.config, ...args], { input: stdin, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`skiff ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  }

  async req(method, path, { auth, headers = {}, body, json } = {}) {
    const h = { ...headers };
    if (auth) h.Authorization = auth;
    if (json !== undefined) {
      h["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    const resp = await fetch(path.startsWith("http") ? path : `${this.url}${path}`, { method, headers: h, body, redirect: "manual" });
    const text = await resp.text();
    let data = text;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      // not JSON
    }
    return { status: resp.status, headers: resp.headers, data, text };
  }

  async expect(status, method, path, opts) {
    const r = await this.req(method, path, opts);
    if (r.status !== status) throw new Error(`${method} ${path}: ${r.status} (wanted ${status}): ${r.text.slice(0, 300)}`);
    return r;
  }

  async register(user, password) {
    await this.expect(201, "POST", "/v1/users/", { json: { username: user, password, email: `${user}@example.com` } });
  }

  // ---- v2 ----

  /** A Bearer token for `repository:NAME:pull,push`. */
  async v2auth(user, password, repo) {
    const r = await this.expect(200, "GET", `/v2/token?service=skiff&scope=${encodeURIComponent(`repository:${repo}:pull,push`)}`, {
      auth: basic(user, password),
    });
    return `Bearer ${r.data.token}`;
  }

  async blob(auth, repo, bytes) {
    const digest = sha256(bytes);
    const start = await this.expect(202, "POST", `/v2/${repo}/blobs/uploads/`, { auth });
    const loc = new URL(start.headers.get("location"), this.url);
    loc.searchParams.set("digest", digest);
    await this.expect(201, "PUT", loc.toString(), { auth, body: bytes, headers: { "Content-Type": "application/octet-stream" } });
    return { digest, size: bytes.length };
  }

  async manifest(auth, repo, ref, mediaType, doc) {
    const bytes = Buffer.from(JSON.stringify(doc));
    // No tag: pushed by digest (an index's images).
    await this.expect(201, "PUT", `/v2/${repo}/manifests/${ref || sha256(bytes)}`, { auth, body: bytes, headers: { "Content-Type": mediaType } });
    return { digest: sha256(bytes), size: bytes.length, mediaType };
  }

  /**
   * An OCI image for `os/arch`: one gzip tar layer, a config with a command and history.
   * Returns the manifest's digest and size and `bytes` (config + layer: what the UI shows).
   */
  async pushImage(auth, repo, tag, { os = "linux", arch = "amd64", layerBytes = 40000 } = {}) {
    const raw = tar([[`app/${arch}.bin`, randomBytes(layerBytes)]]);
    const layer = gzipSync(raw);
    const diffId = sha256(raw);
    const config = Buffer.from(
      JSON.stringify({
        architecture: arch,
        os,
        created: "2026-01-02T03:04:05Z",
        config: { Cmd: ["/app/run", "--port", "8080"], Env: ["PATH=/usr/bin", "MODE=prod"], Labels: { team: "web" }, WorkingDir: "/app", User: "app" },
        rootfs: { type: "layers", diff_ids: [diffId] },
        history: [
          { created: "2026-01-02T03:04:00Z", created_by: "/bin/sh -c #(nop) ADD file:app in /app" },
          { created: "2026-01-02T03:04:05Z", created_by: '/bin/sh -c #(nop)  CMD ["/app/run"]', empty_layer: true },
        ],
      })
    );
    const c = await this.blob(auth, repo, config);
    const l = await this.blob(auth, repo, layer);
    const m = await this.manifest(auth, repo, tag, "application/vnd.oci.image.manifest.v1+json", {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: c.digest, size: c.size },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: l.digest, size: l.size }],
    });
    return { ...m, bytes: c.size + l.size, platform: `${os}/${arch}`, layer: l, config: c };
  }

  /** An index of two platforms under `tag`; its images are pushed by digest. */
  async pushIndex(auth, repo, tag) {
    const amd = await this.pushImage(auth, repo, null, { arch: "amd64", layerBytes: 30000 });
    const arm = await this.pushImage(auth, repo, null, { arch: "arm64", layerBytes: 20000 });
    const idx = await this.manifest(auth, repo, tag, "application/vnd.oci.image.index.v1+json", {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [amd, arm].map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { os: "linux", architecture: m.platform.split("/")[1] } })),
    });
    return { ...idx, images: [amd, arm], bytes: amd.bytes + arm.bytes };
  }

  // ---- v1 ----

  /** Docker 1.3's push of a chain of `n` images, the last tagged `tag`. Returns the images. */
  async pushV1(user, password, repo, tag, n = 2) {
    const auth = basic(user, password);
    const images = [];
    for (let i = 0; i < n; i++) {
      const id = randomBytes(32).toString("hex");
      const parent = images.length ? images[images.length - 1].id : undefined;
      const json = Buffer.from(
        JSON.stringify({
          id,
          ...(parent ? { parent } : {}),
          created: "2014-10-17T15:28:17.563811562Z",
          container_config: { Cmd: ["/bin/sh", "-c", `echo layer ${i}`] },
          docker_version: "1.3.2",
          architecture: "amd64",
          os: "linux",
          Size: 0,
        })
      );
      const layer = gzipSync(tar([[`layer${i}/file.bin`, randomBytes(5000 + 7919 * (i + 1))]]));
      images.push({ id, parent, json, layer });
    }
    const index = images.map((img, i) => (i === images.length - 1 ? { id: img.id, Tag: tag } : { id: img.id }));
    const put = await this.expect(200, "PUT", `/v1/repositories/${repo}/`, { auth, json: index, headers: { "X-Docker-Token": "true" } });
    const token = `Token ${put.headers.get("x-docker-token")}`;
    for (const img of images) {
      await this.expect(200, "PUT", `/v1/images/${img.id}/json`, { auth: token, body: img.json, headers: { "Content-Type": "application/json" } });
      await this.expect(200, "PUT", `/v1/images/${img.id}/layer`, { auth: token, body: img.layer, headers: { "Content-Type": "application/octet-stream" } });
      const payload = createHash("sha256").update(Buffer.concat([img.json, Buffer.from("\n"), img.layer])).digest("hex");
      await this.expect(200, "PUT", `/v1/images/${img.id}/checksum`, {
        auth: token,
        headers: { "X-Docker-Checksum": "tarsum+sha256:0000", "X-Docker-Checksum-Payload": `sha256:${payload}` },
      });
    }
    await this.expect(200, "PUT", `/v1/repositories/${repo}/tags/${tag}`, { auth: token, json: images[images.length - 1].id });
    await this.expect(204, "PUT", `/v1/repositories/${repo}/images`, { auth, json: [], headers: { "X-Docker-Token": "true", "X-Docker-Endpoints": `${this.url}/v1/` } });
    return images;
  }

  /** A repository with no tags: Docker 1.x's first call of a push, nothing after it. */
  async createEmptyV1(user, password, repo) {
    await this.expect(200, "PUT", `/v1/repositories/${repo}/`, { auth: basic(user, password), json: [], headers: { "X-Docker-Token": "true" } });
  }
}

/** A ustar archive of `[name, bytes]` files. */
export function tar(files) {
  const blocks = [];
  for (const [name, data] of files) {
    const head = Buffer.alloc(512);
    head.write(name, 0, 100, "utf8");
    head.write("0000644\0", 100);
    head.write("0000000\0", 108);
    head.write("0000000\0", 116);
    head.write(data.length.toString(8).padStart(11, "0") + "\0", 124);
    head.write((1400000000).toString(8).padStart(11, "0") + "\0", 136);
    head.write("        ", 148);
    head.write("0", 156);
    head.write("ustar\0", 257);
    head.write("00", 263);
    let sum = 0;
    for (const b of head) sum += b;
    head.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    blocks.push(head, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** The UI's size format (static/js/dom.js humanSize), to compare what a page shows. */
export function humanSize(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = Number(bytes);
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
