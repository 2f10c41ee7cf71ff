"""The original's quirks are a run's defaults, each one config.json field and one flag.

The quirks (pose-gan at 8693ec4): the Python 2 staircase heatmaps (pose_utils.py:58), TF 1.x's inverse-warp gradient
(pose_transform.py:45), reduce_max's split of a tie over the parts (pose_transform.py:59), the swapped VGG means
(gan/layer_utils.py:31-37, submodule a4aa9a3) and Keras 2.0.8's Adam epsilon (conditional_gan.py:259-260).
"""

import json

import keras
import pytest

from dgan_tf.config import RunConfig, build_run_config, validate


def test_run_config_defaults_reproduce_the_original(tmp_path):
    config = build_run_config("synthetic", "dsc", data_root=str(tmp_path))
    assert (config.heatmaps, config.warp_gradient, config.part_max, config.vgg_mean, config.adam_epsilon) == (
        "staircase", "original", "split", "original", 1e-8)
    saved = json.loads(config.to_json())
    assert {"heatmaps", "warp_gradient", "part_max", "vgg_mean", "adam_epsilon"} <= set(saved)
    assert "caffe_mean_quirk" not in saved
    assert RunConfig.from_json(config.to_json()) == config


def test_clean_alternatives_are_one_override_each(tmp_path):
    config = build_run_config("synthetic", "dsc", data_root=str(tmp_path), heatmaps="gaussian", warp_gradient="exact",
                              part_max="first", vgg_mean="correct", adam_epsilon=1e-7)
    assert (config.heatmaps, config.warp_gradient, config.part_max, config.vgg_mean, config.adam_epsilon) == (
        "gaussian", "exact", "first", "correct", 1e-7)


@pytest.mark.parametrize("field, value", [("heatmaps", "smooth"), ("warp_gradient", "inverse"), ("part_max", "mean"),
                                          ("vgg_mean", True), ("adam_epsilon", 0.0)])
def test_validate_names_the_bad_field(tmp_path, field, value):
    config = build_run_config("synthetic", "dsc", data_root=str(tmp_path))
    with pytest.raises(ValueError, match=field):
        validate(config.replace(**{field: value}))


def test_a_config_written_before_the_fields_existed_keeps_what_that_run_did(tmp_path):
    values = json.loads(build_run_config("synthetic", "dsc", data_root=str(tmp_path)).to_json())
    del values["part_max"]  # a run trained before the option: the first tied part took a tie's gradient
    assert RunConfig.from_json(json.dumps(values)).part_max == "first"
    for name in ("heatmaps", "warp_gradient", "vgg_mean", "adam_epsilon"):
        del values[name]
    values["caffe_mean_quirk"] = False
    old = RunConfig.from_json(json.dumps(values))
    assert (old.heatmaps, old.warp_gradient, old.part_max, old.vgg_mean, old.adam_epsilon) == (
        "gaussian", "exact", "first", "correct", 1e-7)
    values["caffe_mean_quirk"] = True
    assert RunConfig.from_json(json.dumps(values)).vgg_mean == "original"


def test_flags_reach_the_config_and_count_only_when_typed(tmp_path):
    from dgan_tf.cli.train import parse_args, run_config
    from dgan_tf.run import Run

    root = str(tmp_path / "data")
    plain = run_config(parse_args(["--data-root", root]), Run(tmp_path / "run-a"))
    assert (plain.heatmaps, plain.warp_gradient, plain.part_max, plain.vgg_mean) == (
        "staircase", "original", "split", "original")
    args = parse_args(["--data-root", root, "--heatmaps", "gaussian", "--warp-gradient", "exact", "--part-max", "first",
                       "--vgg-mean", "correct"])
    typed = run_config(args, Run(tmp_path / "run-b"))
    assert (typed.heatmaps, typed.warp_gradient, typed.part_max, typed.vgg_mean) == (
        "gaussian", "exact", "first", "correct")
    unset = parse_args([])
    assert all(getattr(unset, name) is None for name in ("heatmaps", "warp_gradient", "part_max", "vgg_mean"))
    with pytest.raises(SystemExit):
        parse_args(["--heatmaps", "smooth"])


def test_build_models_and_adam_use_the_config(tmp_path):
    from dgan_tf.build import adam_optimizer, build_models
    from dgan_tf.loss_terms import build_generator_terms

    config = build_run_config("synthetic", "percloss", data_root=str(tmp_path), width=0.125, heatmaps="gaussian",
                              warp_gradient="exact", part_max="first", vgg_mean="correct")
    generator, discriminator = build_models(config)
    reconstruction = build_generator_terms(config, vgg_weights="random")["g_reconstruction"].fn
    assert generator.get_layer("pose_heatmaps").heatmaps == "gaussian"
    assert discriminator.get_layer("pose_heatmaps").heatmaps == "gaussian"
    assert {generator.get_layer(f"deformable_skip{level}").part_max for level in range(4)} == {"first"}
    assert generator.get_layer("deformable_skip0").warp_gradient == "exact"
    assert reconstruction.feature_model.get_layer("vgg_preprocess").vgg_mean == "correct"
    assert adam_optimizer(config).epsilon == pytest.approx(1e-8)
    assert adam_optimizer(config.replace(adam_epsilon=1e-7)).epsilon == pytest.approx(1e-7)
    assert keras.optimizers.Adam().epsilon == pytest.approx(1e-7)  # why the field exists
