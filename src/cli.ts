/**
 * Command-line parsing: `notify [command] [--flag=value ...]`. Pure, so it is tested directly.
 */
export const COMMANDS = ["run", "migrate", "healthcheck", "audit", "outbox", "export", "import", "help", "version"] as const;
export type Command = (typeof COMMANDS)[number];

/** Flags that map onto configuration (NOTIFY_<NAME>); any other flag is a usage error. */
export const CONFIG_FLAGS = [
  "role", "http-port", "http-host", "grpc-port", "grpc-url", "admin-port", "log-level", "data-dir",
  "database-url", "amqp-url", "mongo-url", "smtp-url", "mail-from", "public-url", "worker-concurrency",
] as const;

export interface ParsedArgs {
  command: Command;
  sub: string[];
  flags: Record<string, string | true>;
}

export class UsageError extends Error {}

export function parseArgs(argv: string[]): ParsedArgs {
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a === "-h" || a === "--help") return { command: "help", sub: [], flags };
    if (a === "-v" || a === "--version") return { command: "version", sub: [], flags };
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      if (!(CONFIG_FLAGS as readonly string[]).includes(name)) throw new UsageError(`unknown flag --${name}`);
      let value: string | undefined = eq === -1 ? undefined : a.slice(eq + 1);
      if (value === undefined) {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith("--")) throw new UsageError(`flag --${name} needs a value`);
        value = next;
        i++;
      }
      flags[name] = value;
    } else if (a.startsWith("-")) {
      throw new UsageError(`unknown flag ${a}`);
    } else positional.push(a);
  }
  const [first, ...rest] = positional;
  if (first === undefined) return { command: "run", sub: [], flags };
  if (!(COMMANDS as readonly string[]).includes(first)) throw new UsageError(`unknown command "${first}"`);
  if (first === "audit" && rest[0] !== "verify") throw new UsageError(`unknown audit command "${rest[0] ?? ""}" (expected: audit verify)`);
  // export [file] and import <file> take one path; every other command none.
  const maxArgs = first === "export" || first === "import" ? 1 : 0;
  if (first !== "audit" && rest.length > maxArgs) throw new UsageError(`unexpected argument "${rest[maxArgs]}"`);
  return { command: first as Command, sub: rest, flags };
}

export const USAGE = `notify — notifications and audit, one binary

Usage:
  notify [--role=<role>[,<role>...]] [flags]   run roles (default: all)
  notify migrate                                apply database migrations
  notify healthcheck                            exit 0 when the local process is ready
  notify audit verify                           check the audit log's hash chain (exit 1 if broken)
  notify outbox                                 list e-mails written to NOTIFY_DATA_DIR/outbox (no SMTP)
  notify export [file]                          write every table as JSON Lines (default: stdout)
  notify import <file|->                        load an export into an empty database
  notify --help | --version

Roles: gateway, worker, scheduler, audit, grpc-backend, all

Flags override environment variables of the same name (--http-port → NOTIFY_HTTP_PORT):
  ${CONFIG_FLAGS.map((f) => `--${f}`).join(" ")}

Configuration (environment): NOTIFY_DATABASE_URL, NOTIFY_AMQP_URL, NOTIFY_SMTP_URL, NOTIFY_MAIL_FROM,
NOTIFY_HTTP_PORT (8080), NOTIFY_GRPC_PORT (50051), NOTIFY_GRPC_URL, NOTIFY_ADMIN_PORT (9090),
NOTIFY_ADMIN_KEY, NOTIFY_JWT_SECRET, NOTIFY_JWKS_URL, NOTIFY_JWT_ISSUER, NOTIFY_JWT_AUDIENCE,
NOTIFY_MONGO_URL, NOTIFY_DATA_DIR, NOTIFY_LOG_LEVEL. See README.md for the full table.
`;
