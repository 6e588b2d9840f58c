//! Every worked example of the seed documents, with PyTorch's outputs, on the
//! CPU reference and on the GPU.

mod common;

use common::{assert_within_bound, config, floats, load, magnitude, shape, terms};
use wgpu_conv2d::{Conv2d, GpuConv2d, Tensor};

#[test]
fn every_seed_example_matches_pytorch_on_cpu_and_gpu() {
    let data = load("seed_examples.json");
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 19, "the seed file has 19 examples");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let config = config(&case["params"]);
        let weight = Tensor::new(shape(&case["weight_shape"]), floats(&case["weight"])).unwrap();
        let bias = (!case["bias"].is_null())
            .then(|| Tensor::new([config.out_channels], floats(&case["bias"])).unwrap());
        let layer = Conv2d::from_weights(config, weight, bias).unwrap();
        let input = Tensor::new(shape(&case["input_shape"]), floats(&case["input"])).unwrap();
        let expected = Tensor::new(shape(&case["output_shape"]), floats(&case["output"])).unwrap();
        let mag = magnitude(&layer, &input);

        let cpu = layer.forward_cpu(&input).unwrap();
        assert_within_bound(
            &format!("{name} (cpu)"),
            &cpu,
            &expected,
            &mag,
            terms(&layer),
        );

        let gpu = GpuConv2d::new(common::gpu(), &layer)
            .unwrap()
            .forward(&input)
            .unwrap();
        assert_within_bound(
            &format!("{name} (gpu)"),
            &gpu,
            &expected,
            &mag,
            terms(&layer),
        );
    }
}
