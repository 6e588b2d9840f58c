// Times the forward pass of the layers named in the URL's fragment (a JSON
// list of { name, input: [n, c, h, w], out, kernel: [kh, kw], stride,
// padding, paddingMode, algorithm, minTimeMs }) on WebGPU, as `wgpu-conv2d
// bench` does natively: a warm-up call, then runs until minTimeMs has passed
// (at least 5); the median kernel time from GPU timestamps and the median
// end-to-end time (upload, compute, read back). `window.bench` holds the rows.
import init, { Conv2d, Tensor, adapterInfo } from "./pkg/wgpu_conv2d.js";

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

// Seeded uniform values in [-1, 1), so both sides time the same kind of data.
function random(length, seed) {
  let state = seed >>> 0 || 1;
  const data = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
    data[i] = ((state >>> 0) / 2 ** 32) * 2 - 1;
  }
  return data;
}

async function time(layer) {
  const [n, c, h, w] = layer.input;
  const conv = await Conv2d.create({
    inChannels: c, outChannels: layer.out, kernelSize: layer.kernel, stride: layer.stride ?? 1,
    padding: layer.padding ?? 0, paddingMode: layer.paddingMode ?? "zeros", algorithm: layer.algorithm,
    seed: 1,
  });
  const x = random(n * c * h * w, 7);
  const onGpu = await Tensor.upload(x, layer.input);
  const firstStart = performance.now();
  await conv.forwardGpuTimed(onGpu);
  const firstCallMs = performance.now() - firstStart;
  const kernel = [], endToEnd = [];
  const start = performance.now();
  while (kernel.length < 5 || performance.now() - start < (layer.minTimeMs ?? 500)) {
    const timed = await conv.forwardGpuTimed(onGpu);
    if (timed.kernelMs !== null) kernel.push(timed.kernelMs);
    const t0 = performance.now();
    await conv.forward(x, layer.input);
    endToEnd.push(performance.now() - t0);
  }
  return {
    name: layer.name, algorithm: await conv.resolvedAlgorithm(layer.input),
    kernel_ms: kernel.length ? median(kernel) : null, end_to_end_ms: median(endToEnd),
    first_call_ms: firstCallMs, runs: endToEnd.length,
  };
}

try {
  await init();
  const adapter = await adapterInfo();
  const layers = JSON.parse(decodeURIComponent(location.hash.slice(1)) || "[]");
  const rows = [];
  for (const layer of layers) rows.push({ ...(await time(layer)), adapter: adapter.name });
  document.getElementById("out").textContent = JSON.stringify(rows, null, 1);
  window.bench = rows;
} catch (error) {
  window.benchError = error.message;
  document.getElementById("out").textContent = `error: ${error.message}`;
}
window.benchDone = true;
