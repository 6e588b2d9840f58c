//! Every worked example of the seed documents, with PyTorch's outputs, on the
//! CPU reference and on the GPU.

mod common;

use common::{check_both_paths, floats, layer_from_case, load, shape};
use wgpu_conv2d::Tensor;

#[test]
fn every_seed_example_matches_pytorch_on_cpu_and_gpu() {
    let data = load("seed_examples.json");
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 19, "the seed file has 19 examples");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let layer = layer_from_case(case).unwrap();
        let input = Tensor::new(shape(&case["input_shape"]), floats(&case["input"])).unwrap();
        let expected = Tensor::new(shape(&case["output_shape"]), floats(&case["output"])).unwrap();
        check_both_paths(name, &layer, &input, &expected);
    }
}
