// The seed examples in a Deno script, through the JavaScript package on
// Deno's WebGPU: each worked example of the seed documents, checked against
// PyTorch's output under the fp32 bound (K + 2)·2⁻²³·Σ|w·x| (Σ|w·x| from the
// package's CPU reference on absolute values).
//
//   tools/web.sh build examples/web/pkg
//   deno run --allow-read examples/web/seeds_deno.js
import init, { Conv2d, adapterInfo } from "./pkg/wgpu_conv2d.js";

const here = new URL(".", import.meta.url);
await init({ module_or_path: await Deno.readFile(new URL("pkg/wgpu_conv2d_bg.wasm", here)) });
const seeds = JSON.parse(await Deno.readTextFile(new URL("../../tests/data/seed_examples.json", here)));
console.log(`adapter: ${(await adapterInfo()).name}`);

const options = (p) => ({
  inChannels: p.in_channels, outChannels: p.out_channels, kernelSize: p.kernel_size, stride: p.stride,
  padding: p.padding, dilation: p.dilation, groups: p.groups, bias: p.bias, paddingMode: p.padding_mode,
});
const abs = (values) => Float32Array.from(values, Math.abs);

let failures = 0;
for (const c of seeds.cases) {
  const bias = c.bias === null ? undefined : Float32Array.from(c.bias);
  const conv = await Conv2d.create(options(c.params), Float32Array.from(c.weight), bias);
  const x = Float32Array.from(c.input);
  const y = await conv.forward(x, c.input_shape);
  const absConv = await Conv2d.create(options(c.params), abs(c.weight), bias && abs(bias));
  const magnitude = absConv.forwardCpu(abs(x), c.input_shape).data;
  const k = (c.params.in_channels / c.params.groups) * c.weight_shape[2] * c.weight_shape[3] + (bias ? 1 : 0);
  const bad = y.data.findIndex((v, i) => !(Math.abs(v - c.output[i]) <= (k + 2) * 2 ** -23 * magnitude[i]));
  const sameShape = JSON.stringify(y.shape) === JSON.stringify(c.output_shape);
  if (!sameShape || bad >= 0) {
    failures++;
    console.log(`✗ ${c.name}: ${sameShape ? `output ${bad} is ${y.data[bad]}, PyTorch ${c.output[bad]}` : `shape ${y.shape}`}`);
  } else {
    console.log(`✓ ${c.name}`);
  }
  conv.free();
  absConv.free();
}
console.log(`${seeds.cases.length - failures}/${seeds.cases.length} seed examples match PyTorch on Deno's WebGPU`);
Deno.exit(failures === 0 ? 0 : 1);
