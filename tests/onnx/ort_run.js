// Runs an ONNX model whose input is uint8 pixels in ONNX Runtime (npm onnxruntime-node) and writes
// its first output's raw data (float logits, or uint8 codes): the check of lowbit's QDQ export
// (tests/onnx/onnx_qdq_test.cc).
// usage: node ort_run.js MODEL.onnx PIXELS.u8 COUNT SHAPE OUT   (SHAPE per image, e.g. 1,28,28)
// Exit 0 when written; 2 with one line on stderr when ONNX Runtime refuses the model or the input.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, pixelsPath, countText, shapeText, outPath] = process.argv.slice(2);
  const count = Number(countText);
  const shape = [count, ...shapeText.split(',').map(Number)];
  const b = fs.readFileSync(pixelsPath);
  const pixels = new Uint8Array(b.buffer, b.byteOffset, b.length);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('uint8', pixels, shape) };
  const out = (await session.run(feeds))[session.outputNames[0]];
  fs.writeFileSync(outPath, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
}
main().catch((e) => { console.error(String(e).split('\n')[0]); process.exit(2); });
