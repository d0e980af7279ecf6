// Step 4 of the PyTorch -> lowbit example: runs lowbit's exported QDQ model in ONNX Runtime (npm
// onnxruntime-node) on MNIST test images as uint8 and compares its classes with lowbit's engine's.
// usage: NODE_PATH=.../node_modules node check_ort.js MODEL.onnx IMAGES.idx[.gz] LABELS.idx[.gz] \
//          LOWBIT_INFER.json MIN_AGREEMENT_PERCENT
// LOWBIT_INFER.json: `lowbit infer --model MODEL.lbq IMAGES --limit N --json` (the first N images).
// Exit 0 when the classes agree on at least MIN_AGREEMENT_PERCENT of the images, 1 otherwise.
'use strict';
const fs = require('fs');
const zlib = require('zlib');
const ort = require('onnxruntime-node');

function idx(file) {
  let b = fs.readFileSync(file);
  if (b[0] === 0x1f && b[1] === 0x8b) b = zlib.gunzipSync(b);
  const dims = b[3], shape = [];
  for (let i = 0; i < dims; ++i) shape.push(b.readUInt32BE(4 + 4 * i));
  return { shape, data: new Uint8Array(b.buffer, b.byteOffset + 4 + 4 * dims, b.length - 4 - 4 * dims) };
}

async function main() {
  const [model, imagesPath, labelsPath, inferPath, minText] = process.argv.slice(2);
  const lowbit = JSON.parse(fs.readFileSync(inferPath, 'utf8'));
  const engine = lowbit.predictions.map((p) => p.class);
  const count = engine.length;
  const images = idx(imagesPath), labels = idx(labelsPath).data;
  const size = images.shape[1] * images.shape[2];
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const input = new ort.Tensor('uint8', images.data.slice(0, count * size), [count, 1, images.shape[1], images.shape[2]]);
  const logits = (await session.run({ [session.inputNames[0]]: input }))[session.outputNames[0]].data;
  const classes = logits.length / count;
  let same = 0, rightOrt = 0, rightEngine = 0;
  for (let n = 0; n < count; ++n) {
    let best = 0;
    for (let c = 1; c < classes; ++c) if (logits[n * classes + c] > logits[n * classes + best]) best = c;
    same += best === engine[n];
    rightOrt += best === labels[n];
    rightEngine += engine[n] === labels[n];
  }
  const pct = (v) => (100 * v / count).toFixed(2);
  console.log(`${model}: ONNX Runtime ${require('onnxruntime-node/package.json').version} and lowbit agree on ` +
              `${pct(same)} % of ${count} test images; accuracy ORT ${pct(rightOrt)} %, lowbit ${pct(rightEngine)} %`);
  process.exit(100 * same / count >= Number(minText) ? 0 : 1);
}
main().catch((e) => { console.error(String(e).split('\n')[0]); process.exit(2); });
