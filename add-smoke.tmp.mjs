import xmlrpc from 'xmlrpc';
import { readFileSync, readdirSync } from 'node:fs';
const c = xmlrpc.createClient({ url: process.argv[2], basic_auth: { user: 'u', pass: 'k' } });
const call = (m, ...p) => new Promise((res, rej) => c.methodCall(m, p, (e, v) => (e ? rej(e) : res(v))));
const dir = '/work/shared/corpus/dev/originals';
const files = readdirSync(dir).filter(f => /\.(jpe?g|png)$/i.test(f)).slice(0, Number(process.argv[3] ?? 5));
let id = Number(process.argv[4] ?? 1);
for (const f of files) { await call('addImgBlob', 1, id, readFileSync(dir + '/' + f)); id++; }
await call('addKeywordImg', 1, 1, 77);
console.log(await call('getDbImgCount', 1), await call('getKeywordsImg', 1, 1));
