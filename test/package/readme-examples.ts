/** The ```ts code blocks of the README's "TypeScript API" section (up to the next level-2 heading). */
export function readmeExamples(readme: string): string[] {
  const start = readme.search(/^## TypeScript API\b/m);
  if (start < 0) throw new Error('README has no "## TypeScript API" section');
  const rest = readme.slice(start + 1);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}
