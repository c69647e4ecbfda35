// Runs the vendored ConvNetJS (or the build named by CONVNETJS_JS) on a job file and prints
// the result as JSON: tests/naive/convnetjs_node.py writes the jobs.
//   {"op": "predict", "net": Net.toJSON(), "images": [[uint8 H*W*3, row-major RGB], ...],
//    "width": W, "height": H}  ->  [[last layer's output], ...]
//   {"op": "train", "net": ..., "options": {...Trainer options}, "images": [...], "labels": [...],
//    "width": W, "height": H}  ->  Net.toJSON() after one trainer.train per image, in order
"use strict";
const fs = require("fs");
const path = require("path");
const convnetjs = require(process.env.CONVNETJS_JS || path.join(__dirname, "convnetjs.js"));

// As ConvNetJS's own image demos fill a Vol: x = column, y = row, value pixel/255 - 0.5.
function toVol(pixels, width, height) {
  const x = new convnetjs.Vol(width, height, 3, 0.0);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      for (let d = 0; d < 3; d++) {
        x.set(col, row, d, pixels[(row * width + col) * 3 + d] / 255.0 - 0.5);
      }
    }
  }
  return x;
}

const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const net = new convnetjs.Net();
net.fromJSON(job.net);
let result;
if (job.op === "predict") {
  result = job.images.map((pixels) => Array.from(
    net.forward(toVol(pixels, job.width, job.height), false).w));
} else if (job.op === "train") {
  const trainer = new convnetjs.Trainer(net, job.options);
  job.images.forEach((pixels, i) => trainer.train(toVol(pixels, job.width, job.height),
                                                   job.labels[i]));
  result = net.toJSON();
} else {
  throw new Error(`unknown op ${job.op}`);
}
process.stdout.write(JSON.stringify(result));
