/**
 * Depth and cost limits, as validation rules: a query over either limit is rejected before any
 * resolver runs. Cost: one per field; a list field with `first` multiplies what it selects by
 * that number (a variable counts as MAX_FIRST, the most it could ask for); other lists by LIST_GUESS.
 */
import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext, type ValidationRule, type ValueNode } from "graphql";
import { MAX_FIRST } from "./resolvers.ts";

export const MAX_DEPTH = 8;
export const MAX_COST = 10_000;
/** Lists without `first` (a notification's deliveries, a template's variables): a typical size. */
const LIST_GUESS = 10;

interface Measure {
  depth: number;
  cost: number;
}

function multiplier(args: readonly { name: { value: string }; value: ValueNode }[] | undefined, defaultFirst: number | undefined): number {
  const a = args?.find((x) => x.name.value === "first");
  if (!a) return defaultFirst ?? 1;
  if (a.value.kind === Kind.INT) return Math.max(1, Number(a.value.value));
  return MAX_FIRST;
}

function measure(ctx: ValidationContext, set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, seen: Set<string>, parentType: string | undefined): Measure {
  let depth = 0;
  let cost = 0;
  const schema = ctx.getSchema();
  for (const sel of set.selections) {
    if (sel.kind === Kind.FIELD) {
      // Introspection counts too: deeply nested __type { ofType { ofType ... } } is a classic abuse.
      const type = parentType ? schema.getType(parentType) : undefined;
      const fieldDef = type && "getFields" in type ? (type.getFields() as Record<string, { type: unknown; args?: { name: string; defaultValue?: unknown }[] }>)[sel.name.value] : undefined;
      const typeName = fieldDef ? String(fieldDef.type).replace(/[[\]!]/g, "") : undefined;
      const isList = fieldDef ? String(fieldDef.type).includes("[") : false;
      const defFirst = fieldDef?.args?.find((x) => x.name === "first")?.defaultValue as number | undefined;
      const inner = sel.selectionSet ? measure(ctx, sel.selectionSet, fragments, seen, typeName) : { depth: 0, cost: 0 };
      const times = sel.arguments?.some((x) => x.name.value === "first") || defFirst !== undefined ? multiplier(sel.arguments, defFirst) : isList ? LIST_GUESS : 1;
      depth = Math.max(depth, 1 + inner.depth);
      cost += 1 + times * inner.cost;
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      const inner = measure(ctx, sel.selectionSet, fragments, seen, sel.typeCondition?.name.value ?? parentType);
      depth = Math.max(depth, inner.depth);
      cost += inner.cost;
    } else {
      const name = sel.name.value;
      const frag = fragments.get(name);
      // A fragment spread twice on one path is a cycle; the standard rules report it.
      if (!frag || seen.has(name)) continue;
      const inner = measure(ctx, frag.selectionSet, fragments, new Set([...seen, name]), frag.typeCondition.name.value);
      depth = Math.max(depth, inner.depth);
      cost += inner.cost;
    }
  }
  return { depth, cost };
}

export const limitRule: ValidationRule = (ctx: ValidationContext): ASTVisitor => ({
  Document(doc) {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    const schema = ctx.getSchema();
    for (const d of doc.definitions) {
      if (d.kind !== Kind.OPERATION_DEFINITION) continue;
      const root = d.operation === "query" ? schema.getQueryType() : d.operation === "mutation" ? schema.getMutationType() : schema.getSubscriptionType();
      const m = measure(ctx, d.selectionSet, fragments, new Set(), root?.name);
      if (m.depth > MAX_DEPTH) {
        ctx.reportError(new GraphQLError(`query depth ${m.depth} exceeds the limit of ${MAX_DEPTH}`, { nodes: [d], extensions: { code: "QUERY_TOO_DEEP", limit: MAX_DEPTH, depth: m.depth } }));
      }
      if (m.cost > MAX_COST) {
        ctx.reportError(new GraphQLError(`query cost ${m.cost} exceeds the limit of ${MAX_COST}`, { nodes: [d], extensions: { code: "QUERY_TOO_COSTLY", limit: MAX_COST, cost: m.cost } }));
      }
    }
  },
});
