"""Checkpoints that can be trusted: verified by variable path, damaged files skipped with a warning and kept aside,
no start from scratch over unusable files, rotation by step, partial files cleared, clear errors on a full disk.

A GAN of two tiny Dense models stands in for the real one (the checkpoint code only sees variables), so that
every case runs in well under a second.
"""

import errno
import json
import os
import types

import keras
import numpy as np
import pytest

from dgan_tf.run import Run, checkpoints
from dgan_tf.run.checkpoints import CheckpointError, NoUsableCheckpoint, restore_checkpoint


# The run folder's checkpoint operations, through the Run that owns the layout.
def save_checkpoint(run_dir, gan, step, **kwargs):
    return Run(run_dir).save_checkpoint(gan, step, **kwargs)


def restore_latest(run_dir, gan, **kwargs):
    return Run(run_dir).restore_latest(gan, **kwargs)


def checkpoint_files(run_dir):
    return Run(run_dir).checkpoint_files()


def latest_checkpoint(run_dir):
    return Run(run_dir).latest_checkpoint()


def remove_partial(run_dir):
    return Run(run_dir).remove_partial_files()


def tiny_gan(order="ab", seed=0, extra_layer=False):
    """Generator: Dense layers `a` and `b` (both 4 -> 4) applied in `order`; discriminator: one Dense 4 -> 1."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    layers = {"a": keras.layers.Dense(4, name="a"), "b": keras.layers.Dense(4, name="b")}
    x = inputs
    for name in order:
        x = layers[name](x)
    if extra_layer:
        x = keras.layers.Dense(4, name="c")(x)
    generator = keras.Model(inputs, x, name="generator")
    d_inputs = keras.Input((4,))
    discriminator = keras.Model(d_inputs, keras.layers.Dense(1, name="d")(d_inputs), name="discriminator")
    g_opt, d_opt = keras.optimizers.Adam(), keras.optimizers.Adam()
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    return types.SimpleNamespace(generator=generator, discriminator=discriminator, generator_optimizer=g_opt,
                                 discriminator_optimizer=d_opt)


def state(gan):
    return {key: np.array(checkpoints.variable_value(v)) for key, v in checkpoints.keyed_variables(gan)}


def perturb(gan, value):
    for _, variable in checkpoints.keyed_variables(gan):
        variable.assign(np.full(variable.shape, value, dtype=variable.dtype))


def save_steps(run_dir, gan, steps, keep=3):
    for step in steps:
        perturb(gan, float(step))
        save_checkpoint(run_dir, gan, step, keep=keep)


def truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])


def flip_bytes(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


class Warnings(list):
    def __call__(self, message):
        self.append(message)


def test_round_trip_restores_every_array_and_the_step(tmp_path):
    gan = tiny_gan()
    perturb(gan, 3.0)
    saved = state(gan)
    save_checkpoint(tmp_path, gan, 7)
    perturb(gan, 0.0)
    assert restore_checkpoint(tmp_path / "checkpoints" / "ckpt-00000007.npz", gan) == 7
    for key, value in state(gan).items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)
    keys = set(np.load(tmp_path / "checkpoints" / "ckpt-00000007.npz").files)
    assert "generator/a/kernel" in keys and "generator_optimizer/optimizer/iteration" in keys


def test_arrays_are_matched_by_variable_path_not_position(tmp_path):
    """Layers of equal shapes in another order: each variable gets its own array (the landed code swapped them)."""
    written = tiny_gan("ab", seed=1)
    save_checkpoint(tmp_path, written, 1)
    reordered = tiny_gan("ba", seed=2)  # weights listed b, a; its optimisers are named adam_N + 2 in this process
    assert [w.path for w in reordered.generator.weights][:2] == ["b/kernel", "b/bias"]
    restore_checkpoint(tmp_path / "checkpoints" / "ckpt-00000001.npz", reordered)
    for layer in ("a", "b"):
        np.testing.assert_array_equal(reordered.generator.get_layer(layer).kernel.numpy(),
                                      written.generator.get_layer(layer).kernel.numpy())


def test_a_checkpoint_of_another_model_is_refused_before_anything_is_assigned(tmp_path):
    save_checkpoint(tmp_path, tiny_gan(), 1)
    other = tiny_gan(extra_layer=True)
    before = state(other)
    with pytest.raises(CheckpointError, match=r"does not match the model: 6 variable\(s\) of the model are not in it \(generator/c/bias"):
        restore_checkpoint(tmp_path / "checkpoints" / "ckpt-00000001.npz", other)
    for key, value in state(other).items():
        np.testing.assert_array_equal(value, before[key])


def test_truncated_newest_checkpoint_is_skipped_with_a_warning_and_kept_aside(tmp_path):
    gan = tiny_gan()
    save_steps(tmp_path, gan, [1, 2, 3])
    newest = tmp_path / "checkpoints" / "ckpt-00000003.npz"
    truncate(newest)
    warnings = Warnings()
    step, path = restore_latest(tmp_path, gan, warn=warnings)
    assert step == 2 and path.name == "ckpt-00000002.npz"
    assert gan.generator.get_layer("a").kernel.numpy().flat[0] == 2.0
    assert any("ckpt-00000003.npz" in w and "truncated or damaged" in w for w in warnings), warnings
    assert not newest.exists() and (tmp_path / "checkpoints" / "corrupt" / "ckpt-00000003.npz").exists()
    assert json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["file"] == "ckpt-00000002.npz"


def test_flipped_bytes_fall_back_instead_of_a_zipfile_traceback(tmp_path):
    gan = tiny_gan()
    save_steps(tmp_path, gan, [1, 2])
    flip_bytes(tmp_path / "checkpoints" / "ckpt-00000002.npz")
    warnings = Warnings()
    assert restore_latest(tmp_path, gan, warn=warnings)[0] == 1
    assert "ckpt-00000002.npz" in warnings[0]


def test_no_start_from_scratch_when_every_checkpoint_is_damaged(tmp_path):
    gan = tiny_gan()
    save_steps(tmp_path, gan, [1, 2, 3])
    files = [path for _, path in checkpoint_files(tmp_path)]
    for path in files:
        truncate(path, 0.3)
    with pytest.raises(NoUsableCheckpoint) as caught:
        restore_latest(tmp_path, gan, warn=Warnings())
    message = str(caught.value)
    for path in files:
        assert path.name in message
        assert path.exists()  # nothing moved or deleted when refusing
    assert "start over" in message and "--run" in message


def test_an_index_keyed_checkpoint_of_0_2_is_refused_with_the_reason(tmp_path):
    gan = tiny_gan()
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    arrays = {"step": np.array(5)}
    for group, variables in (("generator", gan.generator.weights), ("discriminator", gan.discriminator.weights)):
        for i, variable in enumerate(variables):
            arrays[f"{group}/{i:04d}"] = np.asarray(variable.numpy())
    np.savez(folder / "ckpt-00000005.npz", **arrays)
    with pytest.raises(NoUsableCheckpoint, match="dgan_tf 0.1, which stored arrays by position"):
        restore_latest(tmp_path, gan)


def test_the_newest_complete_checkpoint_wins_over_a_stale_latest_json(tmp_path):
    """Killed between the rename and the latest.json update: the renamed checkpoint is complete, so it is used."""
    gan = tiny_gan()
    save_steps(tmp_path, gan, [1, 2])
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps({"step": 1, "file": "ckpt-00000001.npz"}))
    assert restore_latest(tmp_path, gan)[0] == 2
    assert json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["step"] == 2


def test_partial_files_of_interrupted_writes_are_removed_and_nothing_else(tmp_path):
    gan = tiny_gan()
    save_steps(tmp_path, gan, [1])
    folder = tmp_path / "checkpoints"
    partial = [folder / ".ckpt-00000002.npz.k2j4_x9a.tmp", folder / ".latest.json.abcdefgh.tmp",
               folder / ".ckpt-00000003.npz.partial.tmp",
               tmp_path / ".config.json.0a1b2c3d.tmp", tmp_path / ".generator.tmp.keras"]
    for path in partial:
        path.write_bytes(b"\x00" * 10)
    (tmp_path / "notes.tmp").write_text("the user's")
    removed = remove_partial(tmp_path)
    assert sorted(removed) == sorted(partial)
    assert not any(path.exists() for path in partial)
    assert (tmp_path / "notes.tmp").exists() and (folder / "ckpt-00000001.npz").exists()


def test_rotation_keeps_the_newest_readable_by_step_and_never_the_new_one_deleted(tmp_path):
    """Damaged files that sort after the new checkpoint made the landed rotation delete each new one at once."""
    gan = tiny_gan()
    save_steps(tmp_path, gan, [5, 6, 7])
    for step in (5, 6, 7):
        truncate(tmp_path / "checkpoints" / f"ckpt-0000000{step}.npz")
    warnings = Warnings()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, gan, step, keep=3, warn=warnings)
    assert [s for s, _ in checkpoint_files(tmp_path)] == [2, 3, 4]
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "corrupt").iterdir()) == [
        "ckpt-00000005.npz", "ckpt-00000006.npz", "ckpt-00000007.npz"]
    assert json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["file"] == "ckpt-00000004.npz"
    assert latest_checkpoint(tmp_path).name == "ckpt-00000004.npz"


def test_latest_json_always_names_an_existing_file(tmp_path):
    gan = tiny_gan()
    for step in range(1, 7):
        save_checkpoint(tmp_path, gan, step, keep=2)
        named = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["file"]
        assert (tmp_path / "checkpoints" / named).exists()
    assert [s for s, _ in checkpoint_files(tmp_path)] == [5, 6]


def test_a_full_disk_names_the_file_and_leaves_the_last_checkpoint(tmp_path, monkeypatch):
    gan = tiny_gan()
    save_steps(tmp_path, gan, [1])

    def full_disk(file, arrays):
        file.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "write_arrays", full_disk)
    with pytest.raises(OSError) as caught:
        save_checkpoint(tmp_path, gan, 2)
    message = str(caught.value)
    assert message.startswith(f"No space left on device while writing {tmp_path / 'checkpoints' / 'ckpt-00000002.npz'}")
    assert f"free space under {tmp_path / 'checkpoints'}" in message and "run the same command again" in message
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["ckpt-00000001.npz", "latest.json"]


def test_a_read_only_folder_is_named(tmp_path, monkeypatch):
    from dgan_tf.files import atomic_write_text

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", denied)
    with pytest.raises(OSError, match=rf"cannot write {tmp_path / 'config.json'}: the folder {tmp_path} is read-only"):
        atomic_write_text(tmp_path / "config.json", "{}")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user for chmod to bite")
def test_a_real_read_only_folder_is_named(tmp_path):
    gan = tiny_gan()
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OSError, match="is read-only or not writable"):
            save_checkpoint(tmp_path, gan, 1)
    finally:
        folder.chmod(0o755)
