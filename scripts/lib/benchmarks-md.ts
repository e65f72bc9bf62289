import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * Replaces one benchmark's section of BENCHMARKS.md, found between its
 * `<!-- name:start -->` and `<!-- name:end -->` markers, or appends it; the other
 * sections are left as they are.
 */
export function writeBenchmarkSection(file: string, name: string, section: string): void {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${section.trim()}\n${end}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  const next = from >= 0 && to > from ? text.slice(0, from) + block + text.slice(to + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}
