// Runs an ONNX model in ONNX Runtime (npm onnxruntime-node) on float inputs from a file and
// compares its outputs with the expected ones (lowbit's), printing the largest relative difference.
// usage: node ort_compare.js MODEL.onnx INPUTS.f32 EXPECTED.f32 COUNT TOLERANCE
// Exit 0 when within TOLERANCE (relative to the largest expected magnitude) and every argmax agrees.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputsPath, expectedPath, countText, toleranceText] = process.argv.slice(2);
  const count = Number(countText), tolerance = Number(toleranceText);
  const floats = (p) => { const b = fs.readFileSync(p); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
  const inputs = floats(inputsPath), expected = floats(expectedPath);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const perSample = inputs.length / count, classes = expected.length / count;
  const shapeText = process.env.ORT_INPUT_SHAPE;  // e.g. "1,28,28"
  const shape = [count, ...shapeText.split(',').map(Number)];
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', inputs, shape) };
  const out = (await session.run(feeds))[session.outputNames[0]].data;
  let worst = 0, scale = 0, same = 0;
  for (let i = 0; i < expected.length; ++i) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; ++i) worst = Math.max(worst, Math.abs(out[i] - expected[i]));
  for (let n = 0; n < count; ++n) {
    let a = 0, b = 0;
    for (let c = 1; c < classes; ++c) {
      if (out[n * classes + c] > out[n * classes + a]) a = c;
      if (expected[n * classes + c] > expected[n * classes + b]) b = c;
    }
    if (a === b) ++same;
  }
  console.log(`onnxruntime ${require('onnxruntime-node/package.json').version}: max |diff| / max |value| = ` +
              `${(worst / scale).toExponential(2)}, same class on ${same} of ${count} (${perSample} inputs each)`);
  process.exit(worst / scale <= tolerance && same === count ? 0 : 1);
}
main().catch((e) => { console.error(String(e).split('\n')[0]); process.exit(2); });
