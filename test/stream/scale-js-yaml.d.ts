// js-yaml (4.x, in node_modules through other packages) ships no type declarations; this covers
// the part the deploy check (scale-deploy.test.ts) uses.
declare module 'js-yaml' {
  export function load(text: string): unknown;
  export function loadAll(text: string): unknown[];
}
