// The edge-detection example in a page: an image's luma, convolved on WebGPU
// with the Sobel kernels by wgpu-conv2d, drawn beside the input, with the
// adapter and the milliseconds. `window.demo` holds what the page computed,
// for the test that checks it against the CPU reference
// (tools/web_demo_check.py).
import init, { Conv2d, Tensor, adapterInfo } from "./pkg/wgpu_conv2d.js";

const status = document.getElementById("status");

// Sobel d/dx and d/dy, shape [2, 1, 3, 3].
const SOBEL = new Float32Array([
  -1, 0, 1, -2, 0, 2, -1, 0, 1,
  -1, -2, -1, 0, 0, 0, 1, 2, 1,
]);

async function loadImage(url) {
  const image = new Image();
  image.src = url;
  await image.decode();
  return image;
}

// The image's luma (Rec. 709) in [0, 1] as a (1, H, W) tensor; drawn on `canvas`.
function luma(image, canvas) {
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(image, 0, 0);
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  const x = new Float32Array(canvas.width * canvas.height);
  for (let i = 0; i < x.length; i++) {
    x[i] = (0.2126 * data[4 * i] + 0.7152 * data[4 * i + 1] + 0.0722 * data[4 * i + 2]) / 255;
  }
  const gray = context.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < x.length; i++) {
    const v = Math.round(255 * x[i]);
    gray.data.set([v, v, v, 255], 4 * i);
  }
  context.putImageData(gray, 0, 0);
  return { data: x, shape: [1, canvas.height, canvas.width] };
}

// The edge magnitude √(gx² + gy²) / peak as gray pixels on `canvas`; returns them.
function drawEdges(output, canvas) {
  const [, h, w] = output.shape;
  const plane = h * w;
  const magnitude = new Float32Array(plane);
  let peak = 0;
  for (let i = 0; i < plane; i++) {
    magnitude[i] = Math.hypot(output.data[i], output.data[plane + i]);
    peak = Math.max(peak, magnitude[i]);
  }
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(w, h);
  const gray = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) {
    gray[i] = peak > 0 ? Math.round((255 * magnitude[i]) / peak) : 0;
    pixels.data.set([gray[i], gray[i], gray[i], 255], 4 * i);
  }
  context.putImageData(pixels, 0, 0);
  return gray;
}

async function run(image, sobel, adapter) {
  const x = luma(image, document.getElementById("input"));
  const start = performance.now();
  const output = await sobel.forward(x.data, x.shape);
  const endToEnd = performance.now() - start;
  // The kernel alone, from GPU timestamps where the adapter has them.
  const onGpu = await Tensor.upload(x.data, x.shape);
  const timed = await sobel.forwardGpuTimed(onGpu);
  const gray = drawEdges(output, document.getElementById("output"));
  const kernel = timed.kernelMs === null ? "no timestamps" : `${timed.kernelMs.toFixed(3)} ms kernel`;
  status.textContent =
    `${x.shape[2]}×${x.shape[1]} image on ${adapter.name} (${adapter.backend}): ` +
    `${endToEnd.toFixed(1)} ms end to end (upload, compute, read back), ${kernel}`;
  window.demo = { input: x, output, edges: Array.from(gray), adapter: adapter.name, endToEndMs: endToEnd, kernelMs: timed.kernelMs };
}

async function d2l() {
  const x = new Float32Array(48).map((_, i) => (i % 8 >= 2 && i % 8 < 6 ? 0 : 1));
  const conv = await Conv2d.create(
    { inChannels: 1, outChannels: 1, kernelSize: [1, 2], bias: false },
    new Float32Array([1, -1]),
  );
  const y = await conv.forward(x, [1, 1, 6, 8]);
  const rows = [];
  for (let r = 0; r < 6; r++) {
    rows.push(Array.from(y.data.slice(7 * r, 7 * r + 7), (v) => String(v).padStart(3)).join(""));
  }
  document.getElementById("d2l").textContent = rows.join("\n");
  return Array.from(y.data);
}

try {
  await init();
  const adapter = await adapterInfo();
  const sobel = await Conv2d.create(
    { inChannels: 1, outChannels: 2, kernelSize: 3, padding: 1, paddingMode: "replicate", bias: false },
    SOBEL,
  );
  const d2lOutput = await d2l();
  await run(await loadImage("../data/shapes.png"), sobel, adapter);
  window.demo.d2l = d2lOutput;
  document.getElementById("file").addEventListener("change", async (event) => {
    const [file] = event.target.files;
    if (file) await run(await loadImage(URL.createObjectURL(file)), sobel, adapter);
  });
  window.demoDone = true;
} catch (error) {
  status.textContent = `error: ${error.message}`;
  status.className = "error";
  window.demoError = error.message;
  window.demoDone = true;
}
