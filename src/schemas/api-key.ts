import * as v from "valibot";
import { Name } from "./common.ts";

export const SCOPES = ["events:write", "notifications:read", "templates:write", "campaigns:write", "users:write", "audit:read", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export const ApiKeyInput = v.strictObject({
  name: v.pipe(Name, v.minLength(1, "must not be empty")),
  scopes: v.pipe(v.array(v.picklist(SCOPES, `must be one of ${SCOPES.join(", ")}`)), v.minLength(1, "needs at least one scope")),
});
