"""The Python module: the engine's results, arrays in and out, errors, and a real model's numbers."""
import os
import threading

import numpy as np
import pytest

import lowbit


def tiny_model(seed=7):
    """FC_NN on 1x4x4 images with 3 classes, as tests/model_fixtures.h builds it."""
    model = lowbit.Model.fc_nn(input_shape=[1, 4, 4], classes=3)
    model.init(seed)
    model.metadata = {"mean": [0.5], "std": [0.25]}
    return model


def random_images(count, seed=11):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 1, 4, 4), dtype=np.uint8)


@pytest.fixture(scope="module")
def quantized():
    return lowbit.quantize(tiny_model(), random_images(200), bits=4, method="minmax")


def test_version_and_methods():
    assert lowbit.__version__.count(".") == 2
    assert {"minmax", "best", "gptq"} <= set(lowbit.methods())


def test_predict_is_the_argmax_of_the_logits(quantized):
    images = random_images(300, seed=3)  # several 64-image chunks: the engine's threads run
    logits = quantized.logits(images)
    assert logits.dtype == np.int32 and logits.shape == (300, 3)
    classes = quantized.predict(images)
    assert classes.shape == (300,)
    np.testing.assert_array_equal(classes, logits.argmax(axis=1))
    # Flat rows are the same images.
    np.testing.assert_array_equal(quantized.logits(images.reshape(300, 16)), logits)


def test_strided_input_gives_the_same_as_a_contiguous_copy(quantized):
    images = random_images(100, seed=4)
    every_other = images[::2]
    assert not every_other.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(quantized.logits(every_other), quantized.logits(np.ascontiguousarray(every_other)))


def test_empty_batch(quantized):
    assert quantized.logits(np.zeros((0, 1, 4, 4), np.uint8)).shape == (0, 3)


def test_properties(quantized):
    assert quantized.input_shape == (1, 4, 4)
    assert quantized.input_size == 16
    assert quantized.num_classes == 3
    assert (quantized.weight_bits, quantized.act_bits) == (4, 4)
    assert quantized.metadata["quantization"]["method"] == "minmax"
    assert len(quantized.summary()["layers"]) == 3
    assert quantized.kernel.startswith("qlinear_")


def test_float_model(tmp_path):
    model = tiny_model()
    assert model.input_shape == (1, 4, 4)
    assert [layer["kind"] for layer in model.description["layers"]][-1] == "log_softmax"
    images = random_images(50)
    log_probs = model.log_probabilities(images)
    assert log_probs.dtype == np.float32 and log_probs.shape == (50, 3)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(images), log_probs.argmax(axis=1))
    # Normalized float32 input is taken as it is.
    normalized = ((images.astype(np.float32) / 255 - 0.5) / 0.25).reshape(50, 16)
    np.testing.assert_allclose(model.log_probabilities(normalized), log_probs, rtol=1e-5, atol=1e-6)
    model.save(str(tmp_path / "m.lbm"))
    again = lowbit.Model.load(str(tmp_path / "m.lbm"))
    np.testing.assert_array_equal(again.log_probabilities(images), log_probs)
    assert again.metadata == {"mean": [0.5], "std": [0.25]}


def test_save_load_and_from_bytes_give_the_same_logits(quantized, tmp_path):
    path = str(tmp_path / "q.lbq")
    quantized.save(path)
    images = random_images(70, seed=5)
    for model in (lowbit.load(path), lowbit.QuantizedModel.load(path),
                  lowbit.QuantizedModel.from_bytes(open(path, "rb").read())):
        np.testing.assert_array_equal(model.logits(images), quantized.logits(images))


def test_threads_share_a_model(quantized):
    images = random_images(2000, seed=6)
    want = quantized.logits(images)
    results = [None] * 4

    def run(i):
        results[i] = quantized.logits(images)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results:
        np.testing.assert_array_equal(got, want)


def test_errors_carry_lowbits_message(quantized, tmp_path):
    with pytest.raises(lowbit.Error, match="missing.lbq: cannot open"):
        lowbit.load(str(tmp_path / "missing.lbq"))
    path = tmp_path / "q.lbq"
    quantized.save(str(path))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / "bad.lbq").write_bytes(bytes(data))
    with pytest.raises(lowbit.Error, match="bad.lbq: checksum mismatch"):
        lowbit.load(str(tmp_path / "bad.lbq"))
    with pytest.raises(lowbit.Error, match="checksum mismatch"):
        lowbit.QuantizedModel.from_bytes(bytes(data))
    tiny_model().save(str(tmp_path / "m.lbm"))
    with pytest.raises(lowbit.Error, match="not a quantized model"):
        lowbit.load(str(tmp_path / "m.lbm"))
    assert issubclass(lowbit.Error, RuntimeError)


def test_bad_arrays_are_refused(quantized):
    with pytest.raises(TypeError, match="uint8"):
        quantized.predict(random_images(2).astype(np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 1, 4, 5\) do not fit"):
        quantized.predict(np.zeros((2, 1, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="expected"):
        quantized.predict(np.zeros(16, np.uint8))
    with pytest.raises(ValueError, match="labels"):
        quantized.evaluate(random_images(3), [0, 1])


def test_quantize_arguments():
    model = tiny_model()
    with pytest.raises(ValueError, match="bits"):
        lowbit.quantize(model, random_images(10))
    with pytest.raises(ValueError, match="1..8"):
        lowbit.quantize(model, random_images(10), bits=9)
    with pytest.raises(lowbit.Error, match="nosuch"):
        lowbit.quantize(model, random_images(10), bits=4, method="nosuch")
    mixed = lowbit.quantize(model, random_images(10), weight_bits=2, act_bits=6, method="mse")
    assert (mixed.weight_bits, mixed.act_bits) == (2, 6)
    with pytest.raises(ValueError, match="bias_grid"):
        lowbit.quantize(model, random_images(10), bits=4, bias_grid="coarse")
    # bias_grid="onnx" rounds biases only: the same weights and grids, logits a little apart.
    fine = lowbit.quantize(model, random_images(50), bits=8, method="minmax")
    onnx = lowbit.quantize(model, random_images(50), bits=8, method="minmax", bias_grid="onnx")
    images = random_images(40, seed=3)
    assert not np.array_equal(fine.logits(images), onnx.logits(images))
    assert np.mean(fine.predict(images) == onnx.predict(images)) >= 0.8
    unnormalized = lowbit.Model.fc_nn(input_shape=[1, 4, 4], classes=3)
    unnormalized.init(1)
    with pytest.raises(lowbit.Error, match="normalization"):
        lowbit.quantize(unnormalized, random_images(10), bits=4)


def test_sweep_returns_sweep_json():
    model = tiny_model()
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 3, size=120)
    result = lowbit.sweep(model, random_images(100), random_images(120, seed=9), labels,
                          bits=[2, 8], methods=["minmax", "mse"])
    assert set(result) == {"model", "multiply_adds", "dataset", "data_source", "train_size", "test_size",
                           "float_accuracy", "float_weight_bytes", "kernels", "results"}
    assert (result["train_size"], result["test_size"]) == (100, 120)
    assert result["multiply_adds"] == 16 * 64 + 64 * 32 + 32 * 3  # FC_NN on 4x4 images, 3 classes
    assert [(r["method"], r["weight_bits"]) for r in result["results"]] == [
        ("minmax", 2), ("minmax", 8), ("mse", 2), ("mse", 8)]
    for row in result["results"]:
        assert set(row) == {"method", "weight_bits", "act_bits", "accuracy", "simulated_accuracy",
                            "agreement", "weight_bytes"}
    # A row's accuracy is the engine's: the same as quantizing and evaluating by hand.
    by_hand = lowbit.quantize(model, random_images(100), bits=8, method="mse")
    assert by_hand.evaluate(random_images(120, seed=9), labels)["accuracy"] == result["results"][3]["accuracy"]


REAL = os.environ.get("LOWBIT_TEST_MODEL_DIR")


@pytest.mark.skipif(not REAL, reason="LOWBIT_TEST_MODEL_DIR (tests/package/real_model.sh) not set")
def test_a_real_model_gives_the_commands_numbers(tmp_path):
    model = lowbit.load(os.path.join(REAL, "q.lbq"))
    data = lowbit.load_dataset(model.metadata["dataset"])
    assert data["test_images"].shape[1:] == (1, 28, 28)
    accuracy = model.evaluate(data["test_images"], data["test_labels"])["accuracy"]
    assert f"accuracy {100 * accuracy:.2f}%" in open(os.path.join(REAL, "eval.txt")).read()
    # Quantized from Python as `lowbit quantize --bits 4` does (minmax, the first 1024 training
    # images): the same file, byte for byte.
    float_model = lowbit.Model.load(os.path.join(REAL, "m.lbm"))
    again = lowbit.quantize(float_model, data["train_images"][:1024], bits=4, method="minmax")
    again.save(str(tmp_path / "q.lbq"))
    assert (tmp_path / "q.lbq").read_bytes() == open(os.path.join(REAL, "q.lbq"), "rb").read()


def test_tensors_are_the_weights_the_model_runs():
    """A NumPy forward pass over Model.tensors() gives the model's own log-probabilities."""
    model = tiny_model()
    tensors = model.tensors()
    assert len(tensors) == 3 and all(len(t["parameters"]) == 2 and not t["buffers"] for t in tensors.values())
    x = (random_images(20, seed=5).reshape(20, -1).astype(np.float32) / 255.0 - 0.5) / 0.25
    layers = list(tensors.values())
    for i, layer in enumerate(layers):
        weight, bias = layer["parameters"]
        x = x @ weight.T + bias
        if i + 1 < len(layers):
            x = np.maximum(x, 0.0)
    expected = x - x.max(axis=1, keepdims=True)
    expected -= np.log(np.exp(expected).sum(axis=1, keepdims=True))
    got = model.log_probabilities(random_images(20, seed=5))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # Copies: changing one does not change the model.
    layers[0]["parameters"][0][:] = 0.0
    np.testing.assert_array_equal(model.log_probabilities(random_images(20, seed=5)), got)
