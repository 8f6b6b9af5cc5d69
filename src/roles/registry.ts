/**
 * The roles other than gateway and worker, and the extensions capabilities add to those two.
 * A static table: adding a role adds a line, never a branch elsewhere.
 */
import type { App } from "../app.ts";
import type { Role } from "../config.ts";
import type { HttpExtensions } from "../http/app.ts";
import type { Hooks, UserDirectory } from "../services/dispatch.ts";
import { startGrpcBackend, workerDirectory } from "./grpc-backend.ts";
import { channelHttpExtension, channelWorkerHooks } from "./channel-features.ts";
import { mergeHooks } from "./compose.ts";

type Stop = () => Promise<void>;

export const ROLE_STARTERS: {
  roles: Partial<Record<Exclude<Role, "gateway" | "worker">, (app: App) => Promise<Stop>>>;
  gatewayExtensions?: (app: App) => HttpExtensions;
  workerOptions?: (app: App) => { directory?: UserDirectory; hooks?: Hooks };
} = {
  roles: {
    "grpc-backend": startGrpcBackend,
  },
  gatewayExtensions: () => channelHttpExtension(),
  // Each capability's worker hooks, one entry each.
  workerOptions: (app) => ({ directory: workerDirectory(app), hooks: mergeHooks([channelWorkerHooks(app)]) }),
};
