// Files embedded with import attributes (`with { type: "text" }`) are strings at run time.
declare module "*.sql" { const text: string; export default text; }
declare module "*.proto" { const text: string; export default text; }
declare module "*.graphql" { const text: string; export default text; }
declare module "*.html" { const text: string; export default text; }
// Files embedded with `with { type: "file" }` are paths (in $bunfs inside the compiled binary).
declare module "*.zst" { const path: string; export default path; }
declare module "*.css" { const text: string; export default text; }
/** The admin panel's browser script, served as text (src/http/routes/admin.ts), never imported as code. */
declare module "*/admin/app.js" { const text: string; export default text; }
