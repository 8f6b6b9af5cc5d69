/**
 * How to name another entry point of the build (a Worker's script, a module imported by a specifier
 * the bundler must not follow). In the compiled binary entry points sit under the bundle root by
 * their path below src/; from source, they are files next to the caller.
 */
export function entryPoint(pathBelowSrc: string, fromSource: URL): string {
  return import.meta.url.includes("/$bunfs/") ? `./${pathBelowSrc}` : fromSource.href;
}
