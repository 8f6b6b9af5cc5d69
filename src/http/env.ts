import type { Logger } from "../runtime/log.ts";
import type { Principal } from "./auth.ts";
import type { AuditNote } from "./audit-trail.ts";

/** Hono context variables set by the middleware of src/http/app.ts. */
export interface Env {
  Variables: {
    requestId: string;
    log: Logger;
    /** Resolves the caller once per request (API key or user JWT); null when anonymous. */
    authenticate: () => Promise<Principal | null>;
    principal?: Principal | null;
    /** What this request's audit record says (src/http/audit-trail.ts). */
    audit?: AuditNote;
  };
}
