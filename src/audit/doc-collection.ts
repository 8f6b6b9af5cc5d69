/**
 * The subset of a MongoDB collection the MongoDB audit store uses. Two adapters implement it: the
 * official driver (mongo-driver.ts) and a PostgreSQL "interface twin" (mongo-twin-pg.ts), because
 * no MongoDB server can run on our build machines and the store logic still needs real tests.
 *
 * Filter semantics used (and the only ones the twin implements):
 *   { field: value }                      equality (dotted paths; value null matches missing or null)
 *   { field: { $gt|$gte|$lt|$lte: v } }   on numbers, strings or Dates
 *   { field: { $in: [v, ...] } }
 *   { $or: [filter, ...] }, { $and: [filter, ...] }
 * sort by one field (1 | -1), limit, and `$set` updates.
 */

export type Doc = { _id: string } & Record<string, unknown>;
export type Scalar = string | number | boolean | Date | null;
export type FieldCondition = Scalar | { $gt?: Scalar; $gte?: Scalar; $lt?: Scalar; $lte?: Scalar; $in?: Scalar[] };
export type DocFilter = { $or?: DocFilter[]; $and?: DocFilter[] } & { [field: string]: FieldCondition | DocFilter[] | undefined };

export interface FindOptions {
  sort?: Record<string, 1 | -1>;
  limit?: number;
  /** Fields to return (1); _id is always returned. */
  projection?: Record<string, 1>;
}

export interface IndexOptions {
  name: string;
  unique?: boolean;
  /** TTL index: documents expire this many seconds after the Date in the (single) indexed field. */
  expireAfterSeconds?: number;
}

export interface DocCollection<T extends Doc = Doc> {
  /** Ordered insert. A duplicate key rejects with DuplicateKeyError (code 11000). */
  insertMany(docs: T[]): Promise<void>;
  find(filter: DocFilter, opts?: FindOptions): AsyncIterable<T>;
  findOne(filter: DocFilter, opts?: Omit<FindOptions, "limit">): Promise<T | null>;
  deleteMany(filter: DocFilter): Promise<number>;
  countDocuments(filter: DocFilter): Promise<number>;
  createIndex(keys: Record<string, 1 | -1>, opts: IndexOptions): Promise<void>;
  /** Applies `$set` to the first match and returns the document after the update, or null. */
  findOneAndUpdate(filter: DocFilter, update: { $set: Record<string, unknown> }): Promise<T | null>;
}

export interface DocDatabase {
  collection<T extends Doc = Doc>(name: string): DocCollection<T>;
  close(): Promise<void>;
}

/** MongoDB's duplicate key error code; both adapters reject with it. */
export const DUPLICATE_KEY = 11000;

export function isDuplicateKey(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === DUPLICATE_KEY;
}

export class DuplicateKeyError extends Error {
  readonly code = DUPLICATE_KEY;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DuplicateKeyError";
  }
}
