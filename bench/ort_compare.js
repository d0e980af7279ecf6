// Speed of lowbit's integer engine and of ONNX Runtime (npm onnxruntime-node) on the same quantized
// model in one run: `lowbit export` writes it as QDQ, `lowbit bench` times the engine, this script
// times ONNX Runtime on the same real test images as uint8, and prints images/s and the ratio.
//
// usage: NODE_PATH=/usr/local/share/lowbit/npm/node_modules node bench/ort_compare.js \
//          LOWBIT_CLI MODEL.lbq [--data-dir DIR] [--batch 1,10000] [--threads 1,2] [--seconds 2] [--repeat 3]
// DIR (default $LOWBIT_DATA_DIR) holds mnist/t10k-images-idx3-ubyte.gz (models of [1, 28, 28]
// inputs: FC_NN) or cifar10/cifar-10-binary.tar.gz (or its extracted test_batch.bin; models of
// [3, 32, 32] inputs: the CNNs): the images for both.
// At batch 1 ONNX Runtime is also timed net of the Node binding's per-call cost: the time per call
// less that of a model that only copies its input (Identity), measured in the same run.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { execFileSync } = require('child_process');
const ort = require('onnxruntime-node');

function fail(message) {
  console.error(`ort_compare.js: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { batch: '1,10000', threads: '1,2', seconds: '2', repeat: '3', 'data-dir': process.env.LOWBIT_DATA_DIR };
  const positional = [];
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i].startsWith('--')) {
      const key = argv[i].slice(2);
      if (!(key in args) || i + 1 >= argv.length) fail(`unknown flag or missing value: ${argv[i]}`);
      args[key] = argv[++i];
    } else {
      positional.push(argv[i]);
    }
  }
  if (positional.length !== 2) fail('usage: ort_compare.js LOWBIT_CLI MODEL.lbq [--data-dir DIR] [--batch 1,10000] ' +
                                    '[--threads 1,2] [--seconds 2] [--repeat 3]');
  if (!args['data-dir']) fail('--data-dir: not given and LOWBIT_DATA_DIR is unset');
  const list = (flag) => args[flag].split(',').map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) fail(`--${flag} ${args[flag]}: expected whole numbers of at least 1`);
    return n;
  });
  return { lowbit: positional[0], model: positional[1], dataDir: args['data-dir'], batches: list('batch'),
           threads: list('threads'), seconds: Number(args.seconds), repeat: list('repeat')[0] };
}

// IDX images file (gzip or raw) -> { count, size, pixels }.
function readIdxImages(file) {
  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    fail(`${file}: cannot read (${e.code})`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = zlib.gunzipSync(bytes);
  if (bytes.length < 16 || bytes.readUInt32BE(0) !== 0x803) fail(`${file}: not an IDX images file`);
  const count = bytes.readUInt32BE(4), size = bytes.readUInt32BE(8) * bytes.readUInt32BE(12);
  if (bytes.length !== 16 + count * size) fail(`${file}: ${bytes.length} bytes, expected ${16 + count * size}`);
  return { count, size, pixels: new Uint8Array(bytes.buffer, bytes.byteOffset + 16, count * size) };
}

// CIFAR-10's test_batch.bin (10,000 records of a label byte and 3,072 pixels [3, 32, 32]), from
// DIR/cifar10/ as the extracted file or inside cifar-10-binary.tar.gz -> { count, size, pixels }.
function readCifarTest(dir) {
  const folder = path.join(dir, 'cifar10');
  const record = 1 + 3072;
  let batch;
  for (const f of [path.join(folder, 'cifar-10-batches-bin', 'test_batch.bin'), path.join(folder, 'test_batch.bin')])
    if (fs.existsSync(f)) batch = fs.readFileSync(f);
  if (!batch) {
    const archive = path.join(folder, 'cifar-10-binary.tar.gz');
    let tar;
    try {
      tar = zlib.gunzipSync(fs.readFileSync(archive));
    } catch (e) {
      fail(`${archive}: cannot read (${e.code || e.message})`);
    }
    for (let at = 0; at + 512 <= tar.length;) {  // ustar: 512-byte header, data padded to 512
      const name = tar.toString('latin1', at, at + 100).replace(/\0.*$/s, '');
      if (!name) break;
      const size = parseInt(tar.toString('latin1', at + 124, at + 136).replace(/\0.*$/s, '').trim(), 8);
      if (!Number.isFinite(size)) fail(`${archive}: not a tar archive`);
      if (name.endsWith('test_batch.bin')) batch = tar.subarray(at + 512, at + 512 + size);
      at += 512 + Math.ceil(size / 512) * 512;
    }
    if (!batch) fail(`${archive}: holds no test_batch.bin`);
  }
  if (batch.length % record) fail(`test_batch.bin: ${batch.length} bytes, not whole records of ${record}`);
  const count = batch.length / record, pixels = new Uint8Array(count * 3072);
  for (let i = 0; i < count; ++i) pixels.set(batch.subarray(i * record + 1, (i + 1) * record), i * 3072);
  return { count, size: 3072, pixels, name: 'CIFAR-10' };
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// Images/s of `runs` calls of session.run on one batch for about `seconds`.
async function timeRuns(session, feeds, batch, seconds) {
  await session.run(feeds);  // warm up
  let runs = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  do {
    await session.run(feeds);
    ++runs;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  } while (elapsed < seconds);
  return (runs * batch) / elapsed;
}

// Protobuf wire format, enough for a one-node ONNX model.
const varint = (n) => { const b = []; do { let x = n % 128; n = Math.floor(n / 128); if (n) x |= 128; b.push(x); } while (n); return b; };
const field = (number, bytes) => [...varint(number * 8 + 2), ...varint(bytes.length), ...bytes];
const intField = (number, value) => [...varint(number * 8), ...varint(value)];
const text = (s) => [...Buffer.from(s, 'utf8')];

// An ONNX model that only copies its uint8 input [1, size] (Identity): what one session.run call
// costs through the Node binding and ORT's session without any work.
function identityModel(size) {
  const valueInfo = (name) => field(1, text(name)).concat(field(2, field(1, [...intField(1, 2),
    ...field(2, [...field(1, intField(1, 1)), ...field(1, intField(1, size))])])));
  const node = [...field(1, text('x')), ...field(2, text('y')), ...field(4, text('Identity'))];
  const graph = [...field(1, node), ...field(2, text('identity')), ...field(11, valueInfo('x')), ...field(12, valueInfo('y'))];
  return Uint8Array.from([...intField(1, 8), ...field(7, graph), ...field(8, intField(2, 17))]);
}

// The node types ORT ran: what its graph optimizer made of the QDQ graph, from its profiler.
async function ranOps(onnxPath, feeds, dir) {
  const prefix = path.join(dir, 'ort_profile');
  const session = await ort.InferenceSession.create(onnxPath, { enableProfiling: true, profileFilePrefix: prefix });
  await session.run(feeds);
  session.endProfiling();
  await session.release();
  const file = fs.readdirSync(dir).filter((f) => f.startsWith('ort_profile')).map((f) => path.join(dir, f))[0];
  const events = JSON.parse(fs.readFileSync(file, 'utf8'));
  return [...new Set(events.filter((e) => e.cat === 'Node' && e.args && e.args.op_name).map((e) => e.args.op_name))].sort();
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort_compare_'));
  const onnxPath = path.join(dir, path.basename(a.model).replace(/\.lbq$/, '') + '.onnx');
  const exported = execFileSync(a.lowbit, ['export', a.model, '--out', onnxPath], { encoding: 'utf8' }).trim();
  const shapeMatch = /uint8 pixels \[batch, ([0-9, ]+)\]/.exec(exported);
  if (!shapeMatch) fail(`${a.model}: unexpected export output: ${exported}`);
  const shape = shapeMatch[1].split(',').map(Number);
  const cifar = shape.join(',') === '3,32,32';
  const images = cifar ? readCifarTest(a.dataDir)
                       : { ...readIdxImages(path.join(a.dataDir, 'mnist', 't10k-images-idx3-ubyte.gz')), name: 'MNIST' };
  if (shape.reduce((x, y) => x * y, 1) !== images.size)
    fail(`${a.model}: takes ${shape.join('x')} inputs, the ${images.name} test images have ${images.size} pixels`);

  // lowbit's engine: its own bench command, the same images (the test set, repeated to fill a batch).
  const bench = JSON.parse(execFileSync(a.lowbit, [
    'bench', '--model', a.model, '--batch', a.batches.join(','), '--threads', a.threads.join(','),
    '--seconds', String(a.seconds), '--repeat', String(a.repeat), '--data-dir', path.join(a.dataDir, cifar ? 'cifar10' : 'mnist'),
    '--json', '-q'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  const lowbit = new Map(bench.results.map((r) => [`${r.threads}/${r.batch}`, r.images_per_s]));

  const rows = [];
  let ops = [];
  for (const threads of a.threads) {
    const session = await ort.InferenceSession.create(onnxPath, {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
    const feedsOf = (batch) => {
      const pixels = new Uint8Array(batch * images.size);
      for (let i = 0; i < pixels.length; ++i) pixels[i] = images.pixels[i % images.pixels.length];
      return { [session.inputNames[0]]: new ort.Tensor('uint8', pixels, [batch, ...shape]) };
    };
    const results = a.batches.map(() => []);
    for (let r = 0; r < a.repeat; ++r)  // repeats take turns, as lowbit bench's do
      for (let b = 0; b < a.batches.length; ++b)
        results[b].push(await timeRuns(session, feedsOf(a.batches[b]), a.batches[b], a.seconds));
    await session.release();
    for (let b = 0; b < a.batches.length; ++b) {
      const batch = a.batches[b];
      const row = { batch, threads, lowbit: lowbit.get(`${threads}/${batch}`), ort: median(results[b]),
                    ortMin: Math.min(...results[b]), ortMax: Math.max(...results[b]) };
      if (batch === 1) {  // the same calls of the Identity model, taking turns with the model's
        const identity = await ort.InferenceSession.create(identityModel(images.size), {
          intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' });
        const feeds = { x: new ort.Tensor('uint8', images.pixels.slice(0, images.size), [1, images.size]) };
        const model = await ort.InferenceSession.create(onnxPath, {
          intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
        const empty = [], full = [];
        for (let r = 0; r < a.repeat; ++r) {
          empty.push(1e6 / (await timeRuns(identity, feeds, 1, a.seconds)));
          full.push(1e6 / (await timeRuns(model, feedsOf(1), 1, a.seconds)));
        }
        row.callUs = median(empty);
        // Left out when the difference is lost in the machine's noise.
        if (median(full) > 1.05 * row.callUs) row.ortInside = 1e6 / (median(full) - row.callUs);
        if (!ops.length) ops = await ranOps(onnxPath, feedsOf(1), dir);
        await identity.release();
        await model.release();
      }
      rows.push(row);
    }
  }
  const fmt = (v) => (v === undefined ? '-' : Math.round(v).toLocaleString('en-US'));
  const kernels = cifar ? `CNN graph: im2col + ${bench.kernel}` : `${bench.kernel} (first layer ${bench.input_kernel})`;
  console.log(`${exported}\nlowbit ${kernels} vs onnxruntime ` +
              `${require('onnxruntime-node/package.json').version} (ran: ${ops.join(', ') || 'see profile'}), ` +
              `${images.count} ${images.name} test images as uint8, median of ${a.repeat} runs of ${a.seconds} s; ` +
              `load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  console.log(`${'batch'.padStart(6)} ${'threads'.padStart(7)} ${'lowbit img/s'.padStart(14)} ` +
              `${'ORT img/s'.padStart(12)} ${'ratio'.padStart(6)} ${'ORT net'.padStart(15)} ${'ratio'.padStart(6)}`);
  for (const r of rows)
    console.log(`${String(r.batch).padStart(6)} ${String(r.threads).padStart(7)} ${fmt(r.lowbit).padStart(14)} ` +
                `${fmt(r.ort).padStart(12)} ${(r.lowbit / r.ort).toFixed(2).padStart(6)} ` +
                `${fmt(r.ortInside).padStart(15)} ${r.ortInside ? (r.lowbit / r.ortInside).toFixed(2).padStart(6) : '     -'}`);
  const call = rows.filter((r) => r.callUs).map((r) => `${r.callUs.toFixed(1)} us (${r.threads} thread${r.threads > 1 ? 's' : ''})`);
  console.log('ratio: lowbit / ONNX Runtime images/s. ORT net (batch 1): 1 / (time per call - time per call of an ' +
              `Identity model on the same input: ${call.join(', ')}), i.e. without the binding's per-call cost.`);
  fs.rmSync(dir, { recursive: true, force: true });
}
main().catch((e) => fail(String(e).split('\n')[0]));
