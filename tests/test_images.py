"""dgan_tf.images: the one image-size type, the one image reader (the same pixels as the training pipeline), and
the uint8 conversions: the original evaluation's truncation, the export's rounding, the real images' round trip."""

import json

import numpy as np
import pytest

from dgan_tf.images import (ImageReadError, ImageSize, evaluation_uint8, original_round_trip, read_image,
                            read_image_size, real_to_uint8, serving_uint8, stored_pixels, to_rgb_uint8)

SIZE = (8, 4)


# ---- ImageSize


@pytest.mark.parametrize("value", ["128x64", "128X64", " 128 x 64 ", (128, 64), [128, 64], ImageSize(128, 64),
                                   (np.int64(128), np.int32(64)), np.array([128, 64])])
def test_image_size_accepts_text_and_pairs_of_integers(value):
    size = ImageSize.of(value)
    assert type(size) is ImageSize and size == (128, 64) and all(type(side) is int for side in size)


@pytest.mark.parametrize("value", [(128.7, 64), (128.0, 64), (True, 64), (np.bool_(True), 64), (0, 64), (128, -1),
                                   (128,), (128, 64, 3), "128x", "128x64x3", "big", "128.5x64", 128, None,
                                   ("128", "64"), np.array([128.0, 64.0])])
def test_image_size_refuses_everything_else_with_one_message(value):
    with pytest.raises(ValueError) as caught:
        ImageSize.of(value)
    assert str(caught.value) == ("image_size must be 'HxW' or (height, width) with positive integers. "
                                 f"Received: image_size={value!r}")
    with pytest.raises(ValueError, match="^frame_size must be .* Received: frame_size="):
        ImageSize.of(value, name="frame_size")


def test_image_size_is_a_tuple_with_text_form():
    size = ImageSize.of("128x64")
    height, width = size
    assert (height, width) == (size.height, size.width) == (128, 64)
    assert str(size) == f"{size}" == "128x64" and json.dumps(size) == "[128, 64]"
    assert ImageSize.of(json.loads(json.dumps(size))) == size and {size: 1}[(128, 64)] == 1


def test_every_image_size_check_takes_numpy_integers_and_refuses_truncation():
    """Each place used its own rule: KeypointGuard took 128.7 as 128, PoseHeatmaps refused np.int64."""
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.evaluation.metrics import ma_mask
    from dgan_tf.inference.keypoint_estimation import blazepose_to_coco18
    from dgan_tf.inference.transfer import Letterbox
    from dgan_tf.layers.keypoint_guard import KeypointGuard
    from dgan_tf.layers.part_geometry import PartGeometry
    from dgan_tf.layers.pose_heatmaps import PoseHeatmaps

    checks = {
        "KeypointGuard": KeypointGuard,
        "PoseHeatmaps": PoseHeatmaps,
        "PartGeometry": PartGeometry,
        "ma_mask": lambda size: ma_mask(np.full((18, 2), -1), size),
        "blazepose_to_coco18": lambda size: blazepose_to_coco18(np.zeros((33, 3)), size),
        "Letterbox": lambda size: Letterbox.fit(size, size),
        "get_dataset": lambda size: get_dataset("synthetic", image_size=size),
    }
    for name, check in checks.items():
        check((np.int64(128), np.int64(64)))
        try:
            check((128.7, 64))
        except ValueError as error:
            assert "with positive integers. Received: " in str(error), (name, str(error))
        else:
            pytest.fail(f"{name} accepted the image size (128.7, 64)")


# ---- reading files


def _write_png(path, array, mode=None):
    """Written by Pillow, which keeps 16-bit grey, 1-bit and grey + alpha as they are."""
    from PIL import Image

    (Image.fromarray(array) if mode is None else Image.fromarray(array, mode)).save(path)
    return path


def test_16_bit_grey_is_rescaled_never_clipped_or_wrapped(tmp_path):
    """Pillow's convert("RGB") clipped 16-bit grey to white; the low byte would wrap."""
    values = np.array([0, 128, 129, 385, 386, 32896, 65407, 65408, 65535, 1000, 20000, 50000, 7, 300, 40000, 65534],
                      np.uint16).reshape(4, 4)
    image = read_image(_write_png(tmp_path / "grey16.png", values))
    assert image.dtype == np.uint8 and image.shape == (4, 4, 3)
    expected = np.round(values / 257.0).astype(np.uint8)  # 65535 -> 255, 32896 = 128 * 257 -> 128
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], expected)
    assert image[0, 0, 0] == 0 and image[2, 0, 0] == 255 and image[1, 1, 0] == 128


def test_1_bit_grey_alpha_rgba_and_cmyk_become_rgb(tmp_path, rng):
    from PIL import Image

    bits = rng.random(SIZE) > 0.5
    np.testing.assert_array_equal(read_image(_write_png(tmp_path / "bits.png", bits))[..., 1], bits * 255)
    grey_alpha = rng.integers(0, 256, SIZE + (2,), dtype=np.uint8)
    image = read_image(_write_png(tmp_path / "la.png", grey_alpha, "LA"))
    np.testing.assert_array_equal(image, np.repeat(grey_alpha[..., :1], 3, axis=-1))  # alpha dropped
    rgba = rng.integers(0, 256, SIZE + (4,), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(_write_png(tmp_path / "rgba.png", rgba)), rgba[..., :3])
    Image.fromarray(rng.integers(0, 256, SIZE + (3,), dtype=np.uint8)).convert("CMYK").save(tmp_path / "cmyk.jpg")
    with Image.open(tmp_path / "cmyk.jpg") as cmyk:
        np.testing.assert_array_equal(read_image(tmp_path / "cmyk.jpg"), np.asarray(cmyk.convert("RGB")))


def test_arrays_of_other_types_or_shapes_are_refused_naming_the_file():
    assert to_rgb_uint8(np.full((2, 2), 65535, np.uint16), "x")[0, 0].tolist() == [255, 255, 255]
    with pytest.raises(ImageReadError, match="^f.tif has pixels of type float32, which are not supported"):
        to_rgb_uint8(np.zeros((2, 2, 3), np.float32), "f.tif")
    with pytest.raises(ImageReadError, match="^i.png has pixels of type int32"):
        to_rgb_uint8(np.zeros((2, 2), np.int32), "i.png")
    with pytest.raises(ImageReadError, match=r"^v.png has shape \(2, 2, 5\), not an image of 1 to 4 channels"):
        to_rgb_uint8(np.zeros((2, 2, 5), np.uint8), "v.png")


def test_each_read_error_names_the_file(tmp_path, monkeypatch):
    from PIL import Image

    def message(path, size=None):
        with pytest.raises(ImageReadError) as caught:
            read_image(path, size)
        assert isinstance(caught.value, ValueError) and caught.value.path == path
        return str(caught.value)

    assert message(tmp_path / "gone.png") == f"{tmp_path / 'gone.png'} does not exist"
    assert message(tmp_path) == f"{tmp_path} is a folder, not an image file"
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    assert message(tmp_path / "bad.png") == \
        f"{tmp_path / 'bad.png'} is not a decodable image (PNG or JPEG expected): truncated or damaged"
    Image.fromarray(np.zeros(SIZE, np.float32)).save(tmp_path / "float.tif")
    assert message(tmp_path / "float.tif").startswith(f"{tmp_path / 'float.tif'} has pixels of type float32")
    good = _write_png(tmp_path / "good.png", np.zeros(SIZE + (3,), np.uint8))
    assert read_image(good, "8x4").shape == (8, 4, 3)
    assert message(good, (4, 8)) == f"{good} has size 8x4, expected 4x8"
    with pytest.raises(ValueError, match="Received: size=4.5"):
        read_image(good, 4.5)
    monkeypatch.setattr("dgan_tf.images.os.access", lambda path, mode: False)  # tests run as root: simulated
    assert message(good) == f"{good} cannot be read (permission denied)"


def test_read_image_size_reads_the_header_only(tmp_path, rng):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "a.jpg", rng.integers(0, 256, (96, 64, 3), dtype=np.uint8), quality=90)
    assert read_image_size(tmp_path / "a.jpg") == ImageSize(96, 64)
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 3 // 4])  # the header and part of the pixels
    assert read_image_size(tmp_path / "cut.jpg") == (96, 64)  # the pixels are never decoded
    with pytest.raises(ImageReadError, match="cut.jpg is not a decodable image"):
        read_image(tmp_path / "cut.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageReadError, match="text.jpg is not a decodable image"):
        read_image_size(tmp_path / "text.jpg")


# ---- the training pipeline decodes the same pixels


def _image_files(folder, rng):
    """{kind: path} of the formats a dataset or a user may bring, each SIZE."""
    import imageio.v3 as iio
    import tensorflow as tf
    from PIL import Image

    files = {
        "grey16.png": rng.integers(0, 65536, SIZE, dtype=np.uint16),
        "rgba.png": rng.integers(0, 256, SIZE + (4,), dtype=np.uint8),
        "bits.png": rng.random(SIZE) > 0.5,
        "rgb.png": rng.integers(0, 256, SIZE + (3,), dtype=np.uint8),
    }
    paths = {name: _write_png(folder / name, array) for name, array in files.items()}
    paths["grey_alpha.png"] = _write_png(folder / "grey_alpha.png", rng.integers(0, 256, SIZE + (2,), np.uint8), "LA")
    for channels in (2, 3, 4):  # 16-bit colour: Pillow hands read_image the high bytes
        paths[f"colour16_{channels}.png"] = folder / f"colour16_{channels}.png"
        pixels = rng.integers(0, 65536, SIZE + (channels,), dtype=np.uint16)
        paths[f"colour16_{channels}.png"].write_bytes(tf.io.encode_png(pixels).numpy())
    paths["photo.jpg"] = folder / "photo.jpg"
    iio.imwrite(paths["photo.jpg"], rng.integers(0, 256, SIZE + (3,), dtype=np.uint8), quality=80)
    paths["grey.jpg"] = folder / "grey.jpg"
    iio.imwrite(paths["grey.jpg"], rng.integers(0, 256, SIZE, dtype=np.uint8))
    palette = Image.fromarray(rng.integers(0, 256, SIZE + (3,), dtype=np.uint8)).convert("P")
    for name in ("palette.png", "palette.gif"):
        palette.save(folder / name)
        paths[name] = folder / name
    paths["rgb.bmp"] = folder / "rgb.bmp"  # 24-bit: TensorFlow's BMP decoder ignores an 8-bit BMP's palette
    Image.fromarray(rng.integers(0, 256, SIZE + (3,), dtype=np.uint8)).save(paths["rgb.bmp"])
    Image.fromarray(rng.integers(0, 256, SIZE + (3,), dtype=np.uint8)).convert("CMYK").save(folder / "cmyk.jpg")
    paths["cmyk.jpg"] = folder / "cmyk.jpg"
    return paths


def test_the_training_pipeline_decodes_the_pixels_read_image_gives(tmp_path, rng):
    from PIL import Image

    from dgan_tf.data.pipeline import decode_image

    paths = _image_files(tmp_path, rng)
    for name, path in paths.items():
        expected = read_image(path, SIZE)
        np.testing.assert_array_equal(stored_pixels(decode_image(str(path), SIZE).numpy()), expected, err_msg=name)
    with Image.open(paths["grey16.png"]) as grey16:
        high_bytes = np.asarray(grey16, np.uint16) >> 8
    assert np.any(read_image(paths["grey16.png"])[..., 0] != high_bytes)  # rounded, not cut to the high byte


# ---- [-1, 1] -> uint8


def original_deprocess(image):
    """test.py's deprocess_image, verbatim: numpy keeps the array's precision."""
    return (255 * ((image + 1) / 2.0)).astype(np.uint8)


def test_evaluation_truncates_where_serving_rounds():
    values = np.array([100.7, 100.2, 254.99, 0.6, 255.0, 0.0, 127.5, 128.5], np.float64)  # 255 (x + 1) / 2
    image = (values / 255.0 * 2.0 - 1.0).astype(np.float32)
    np.testing.assert_array_equal(evaluation_uint8(image), [100, 100, 254, 0, 255, 0, 127, 128])
    np.testing.assert_array_equal(serving_uint8(image), [101, 100, 255, 1, 255, 0, 128, 128])


def test_evaluation_uint8_equals_the_originals_conversion_of_a_float32_output(rng):
    generated = np.tanh(rng.normal(size=(2, 16, 8, 3)) * 2).astype(np.float32)
    generated[0, 0, 0] = (-1.0, 1.0, 0.0)
    np.testing.assert_array_equal(evaluation_uint8(generated), original_deprocess(generated))


def test_serving_uint8_equals_the_exports_graph_around_every_half_level():
    import tensorflow as tf

    from dgan_tf.inference.export import uint8_output

    halves = ((np.arange(-2, 258) + 0.5) / 127.5 - 1.0).astype(np.float32)  # 255 (x + 1) / 2 = k + 0.5
    near = [np.nextafter(halves, np.float32(sign * np.inf)) for sign in (-1, 1)]
    levels = (np.arange(256) / 127.5 - 1.0).astype(np.float32)
    generated = np.concatenate([halves, *near, np.nextafter(near[0], np.float32(-np.inf)),
                                np.nextafter(near[1], np.float32(np.inf)), levels, [-1.5, -1.0, 1.0, 1.5]])
    generated = generated.astype(np.float32).reshape(1, -1, 1, 1)
    served = uint8_output(tf.constant(generated)).numpy()
    np.testing.assert_array_equal(serving_uint8(generated), served)
    literal = tf.cast(tf.clip_by_value(tf.round((generated + 1.0) * 127.5), 0.0, 255.0), tf.uint8).numpy()
    np.testing.assert_array_equal(served, literal)  # the expression the export's docs state
    assert np.count_nonzero(serving_uint8(generated) != np.floor((generated + 1) * 127.5 + 0.5)) > 0  # half to even


def test_real_images_come_back_as_the_originals_float64_round_trip():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    pipeline = ((pixels.astype(np.float32) / 255.0 - 0.5) * 2.0).astype(np.float32)  # data.pipeline's scaling
    np.testing.assert_array_equal(stored_pixels(pipeline), pixels)
    np.testing.assert_array_equal(serving_uint8(pipeline), pixels)
    original = original_deprocess((pixels.astype(np.float64) / 255 - 0.5) * 2)  # PoseHMDataset holds float64
    np.testing.assert_array_equal(real_to_uint8(pipeline), original)
    np.testing.assert_array_equal(original_round_trip(pixels), original)
    lowered = np.flatnonzero(original.ravel() != pixels.ravel())
    assert lowered.tolist() == [1, 2, 5, 9, 10, 13, 17, 18, 21, 25, 26, 29, 33, 34, 41, 42, 49, 50, 57, 58]
    assert np.count_nonzero(evaluation_uint8(pipeline) != pixels) == 63  # why float32 truncation is not used
