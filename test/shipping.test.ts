/**
 * Shipping artefacts checked statically: Docker is not available on the development machines, so
 * the Dockerfile and compose.yaml are parsed and held to what SPEC 8 and the issue ask, and the
 * embedded PGlite assets are checked against the pinned package. Plus the binary size budget.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import pkg from "../package.json" with { type: "json" };
import { ROLES } from "../src/config.ts";
import { BINARY } from "./support/binary.ts";

const ROOT = resolve(import.meta.dir, "..");
const read = (f: string) => readFileSync(join(ROOT, f), "utf8");

describe("Dockerfile", () => {
  const text = read("Dockerfile");
  // Continuation lines folded, comments dropped: one instruction per line.
  const lines = text.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const froms = lines.filter((l) => /^FROM /i.test(l));
  const runtimeStart = lines.findIndex((l) => l === froms.at(-1));
  const runtime = lines.slice(runtimeStart);

  test("multi-stage: a build stage running the package build (bun build --compile, every entry point), a distroless glibc runtime", () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms[0]).toMatch(/ AS build$/i);
    // The image builds with package.json's build script, which compiles every entry point.
    expect(lines.some((l) => /^RUN .*bun run build/.test(l))).toBe(true);
    expect(pkg.scripts.build).toMatch(/^bun build --compile /);
    for (const entry of ["src/main.ts", "src/commands.ts", "src/embedded/pg-thread.ts"]) expect(pkg.scripts.build).toContain(` ${entry}`);
    expect(froms.at(-1)).toMatch(/^FROM gcr\.io\/distroless\/(cc|base)-debian12(:[\w.-]+)? AS runtime$/);
    expect(runtime.some((l) => /^COPY --from=build \S*notify \/notify$/.test(l))).toBe(true);
  });

  test("the Bun version it builds with is the one package.json pins", () => {
    const arg = text.match(/^ARG BUN_VERSION=(\S+)$/m)?.[1];
    expect(arg).toBe(pkg.devDependencies.bun);
    // ...and the build stops if npm installed another one.
    expect(text).toContain('test "$(node_modules/.bin/bun --version)" = "${BUN_VERSION}"');
  });

  test("non-root, entrypoint, healthcheck, labels, ports, data volume", () => {
    const user = runtime.find((l) => /^USER /.test(l));
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER (root|0)(:|$)/);
    expect(runtime).toContain('ENTRYPOINT ["/notify"]');
    expect(runtime.find((l) => l.startsWith("HEALTHCHECK"))).toMatch(/CMD \["\/notify", "healthcheck"\]$/);
    expect(runtime.find((l) => l.startsWith("LABEL"))).toContain("org.opencontainers.image.title=");
    expect(runtime.find((l) => l.startsWith("EXPOSE"))).toContain("8080");
    expect(runtime.find((l) => l.startsWith("VOLUME"))).toContain("/data");
    expect(runtime.find((l) => l.startsWith("ENV"))).toContain("NOTIFY_DATA_DIR=/data");
  });

  test(".dockerignore keeps local builds, data and node_modules out of the context", () => {
    const ignored = read(".dockerignore").split("\n");
    for (const p of ["node_modules", "dist", "data", ".git"]) expect(ignored).toContain(p);
  });
});

describe("compose.yaml", () => {
  const doc = parse(read("compose.yaml"), { merge: true }) as { services: Record<string, any> };
  const s = doc.services;
  const roleServices = ROLES.map((r) => [r, s[r]] as const);

  test("infrastructure: RabbitMQ with management, PostgreSQL, MongoDB, an SMTP catcher with a web UI, all with healthchecks", () => {
    expect(s.rabbitmq.image).toMatch(/^rabbitmq:3\.(1\d)[\w.-]*-management$/);
    expect(s.postgres.image).toMatch(/^postgres:/);
    expect(s.mongo.image).toMatch(/^mongo:/);
    expect(s.mailpit.image).toMatch(/^axllent\/mailpit/);
    expect(s.mailpit.ports.join(",")).toContain("8025");
    for (const name of ["rabbitmq", "postgres", "mongo", "mailpit"]) expect(s[name].healthcheck?.test).toBeDefined();
  });

  test("one migrate job that runs `notify migrate` once", () => {
    expect(s.migrate.command).toEqual(["migrate"]);
    expect(s.migrate.restart).toBe("no");
    expect(s.migrate.depends_on.postgres.condition).toBe("service_healthy");
  });

  test("the five roles: one each, healthcheck via notify healthcheck, depends_on conditions, stop grace, role by env", () => {
    for (const [role, svc] of roleServices) {
      expect(svc, role).toBeDefined();
      expect(svc.environment.NOTIFY_ROLE, role).toBe(role);
      expect(svc.healthcheck.test, role).toEqual(["CMD", "/notify", "healthcheck"]);
      expect(svc.stop_grace_period, role).toMatch(/^\d+s$/);
      // Longer than the process's own drain deadline (NOTIFY_SHUTDOWN_TIMEOUT_MS, 20 s default).
      expect(Number(svc.stop_grace_period.slice(0, -1)), role).toBeGreaterThan(20);
      expect(svc.depends_on.migrate.condition, role).toBe("service_completed_successfully");
      expect(svc.depends_on.postgres.condition, role).toBe("service_healthy");
      expect(svc.depends_on.rabbitmq.condition, role).toBe("service_healthy");
      expect(svc.environment.NOTIFY_DATABASE_URL, role).toMatch(/^postgres:\/\/.*@postgres:5432\//);
      expect(svc.environment.NOTIFY_AMQP_URL, role).toMatch(/^amqp:\/\/.*@rabbitmq:5672/);
      expect(svc.environment.NOTIFY_AUTO_MIGRATE, role).toBe("false");
    }
    expect(s.audit.environment.NOTIFY_MONGO_URL).toMatch(/^mongodb:\/\/mongo:27017/);
    expect(s.worker.environment.NOTIFY_SMTP_URL).toMatch(/^smtp:\/\/mailpit:1025/);
    expect(s.worker.environment.NOTIFY_GRPC_URL).toBe("grpc-backend:50051");
  });

  test("gateways and workers are scaled with deploy.replicas; the gateway port range covers them", () => {
    expect(s.gateway.deploy.replicas).toBeGreaterThanOrEqual(2);
    expect(s.worker.deploy.replicas).toBeGreaterThanOrEqual(2);
    const [range] = s.gateway.ports as string[];
    const [from, to] = range!.split(":")[0]!.split("-").map(Number);
    expect(to! - from! + 1).toBeGreaterThanOrEqual(s.gateway.deploy.replicas);
  });

  test("gateway, worker and scheduler have memory limits above what they were measured to use (BENCHMARKS.md)", () => {
    const mb = (v: string) => Number(/^(\d+)M$/.exec(v)?.[1] ?? NaN);
    expect(mb(s.gateway.deploy.resources.limits.memory)).toBeGreaterThanOrEqual(256);
    expect(mb(s.worker.deploy.resources.limits.memory)).toBeGreaterThanOrEqual(160);
    expect(mb(s.scheduler.deploy.resources.limits.memory)).toBeGreaterThanOrEqual(384);
  });
});

describe("embedded PGlite assets", () => {
  test("the zstd copies in src/embedded/assets are of the pinned @electric-sql/pglite (run scripts/pack-pglite.ts after an upgrade)", () => {
    const manifest = JSON.parse(read("src/embedded/assets/manifest.json")) as { version: string; sha256: Record<string, string> };
    expect(manifest.version).toBe(pkg.dependencies["@electric-sql/pglite"]);
    for (const [name, sha] of Object.entries(manifest.sha256)) {
      const original = readFileSync(join(ROOT, "node_modules/@electric-sql/pglite/dist", name));
      expect(createHash("sha256").update(original).digest("hex"), name).toBe(sha);
      const packed = Bun.zstdDecompressSync(readFileSync(join(ROOT, `src/embedded/assets/${name}.zst`)));
      expect(createHash("sha256").update(packed).digest("hex"), name).toBe(sha);
    }
  });
});

test.skipIf(!existsSync(BINARY))("compiled binary stays within its 120 MB budget", () => {
  const bytes = statSync(BINARY).size;
  console.log(`  dist/notify: ${(bytes / 1e6).toFixed(1)} MB`);
  expect(bytes).toBeLessThanOrEqual(120_000_000);
});
