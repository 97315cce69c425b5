// Writes small parquet files with DuckDB and with arrow-rs (parquet-wasm),
// the writers behind much of the Hugging Face hub's parquet, for
// data/format/parquet's TestOtherWritersFiles. Run from a folder where
// `npm install @duckdb/node-api parquet-wasm apache-arrow` was run:
//   node gen-writers.mjs OUTDIR
import { DuckDBInstance } from '@duckdb/node-api';
import * as arrow from 'apache-arrow';
import * as pw from 'parquet-wasm/esm/parquet_wasm.js';
import fs from 'fs';
import path from 'path';

const out = process.argv[2];
const n = 100;
// Text that compresses less than 3x, so that LZ4_RAW pages are inflated
// into a buffer parquet-go v0.32.0 reallocated (and lost).
const word = (i) => ((i * 2654435761) >>> 0).toString(36);
const rows = [];
for (let i = 0; i < n; i++) {
  rows.push({
    instruction: `Q${i} ${word(i)} ${word(i + 7)} ${word(i * 3)} titration of ${word(i + 11)}?`,
    input: i % 3 == 0 ? null : `ctx ${word(i + 5)} ${word(i * 13)}`,
    output: `A${i} ${word(i + 17)} ${word(i * 5)} pH ${i % 14}`,
  });
}

const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
await c.run('create table t (instruction varchar, input varchar, output varchar)');
for (const r of rows) {
  const q = (s) => (s === null ? 'null' : `'${s}'`);
  await c.run(`insert into t values (${q(r.instruction)}, ${q(r.input)}, ${q(r.output)})`);
}
for (const codec of ['uncompressed', 'snappy', 'zstd', 'gzip', 'lz4', 'brotli']) {
  await c.run(`copy t to '${path.join(out, `duckdb-${codec}.parquet`)}' (format parquet, compression ${codec})`);
}
await c.run(`copy (select [ {'role': 'user', 'content': instruction}, {'role': 'assistant', 'content': output} ] as messages from t) to '${path.join(out, 'duckdb-messages.parquet')}' (format parquet)`);

const wasm = fs.readFileSync('node_modules/parquet-wasm/esm/parquet_wasm_bg.wasm');
await pw.default({ module_or_path: wasm });
const table = arrow.tableFromArrays({
  instruction: rows.map((r) => r.instruction),
  input: rows.map((r) => r.input),
  output: rows.map((r) => r.output),
});
const ipc = arrow.tableToIPC(table, 'stream');
const codecs = { uncompressed: pw.Compression.UNCOMPRESSED, snappy: pw.Compression.SNAPPY, gzip: pw.Compression.GZIP, brotli: pw.Compression.BROTLI, zstd: pw.Compression.ZSTD, lz4raw: pw.Compression.LZ4_RAW };
for (const [name, codec] of Object.entries(codecs)) {
  for (const [v, version] of [[1, pw.WriterVersion.V1], [2, pw.WriterVersion.V2]]) {
    const props = new pw.WriterPropertiesBuilder().setCompression(codec).setWriterVersion(version).build();
    fs.writeFileSync(path.join(out, `arrowrs-${name}-v${v}.parquet`), pw.writeParquet(pw.Table.fromIPCStream(ipc), props));
  }
}
fs.writeFileSync(path.join(out, 'rows.json'), JSON.stringify(rows));
