"""The original generator and discriminator, re-typed for the Keras 2 API of tf_keras (test-only).

Sources, pose-gan at commit 8693ec4 (AliaksandrSiarohin/pose-gan):
- conditional_gan.py:16-143 (block, encoder, decoder, concatenate_skips, make_generator) and
  conditional_gan.py:146-176 (make_discriminator, disc_type "call"), in the original's layer creation order;
- pose_transform.py:21-78 (AffineTransformLayer);
- keras_contrib's InstanceNormalization (keras_contrib/layers/normalization/instancenormalization.py),
  used by conditional_gan.py:29 with its default axis=None.

Changes, and nothing else:
- Python 3 syntax; imports from tf_keras instead of keras / keras_contrib / keras.backend.tf.
- tf.contrib.image.transform -> tf.raw_ops.ImageProjectiveTransformV3 with interpolation NEAREST,
  fill_mode CONSTANT, fill_value 0 and the input's size (contrib's defaults; the same kernel).
- ktf.image.resize_images(NEAREST_NEIGHBOR) -> tf.compat.v1.image.resize_images (the same legacy kernel,
  align_corners=False, no half-pixel centres); reduction_indices= -> axis=.
- AffineTransformLayer: `init_image_size / image_size` written `//` (Python 2 divided the ints);
  affine_mul and the tile multiples given explicit dtypes (TF 2 does not mix int64 numpy arrays with
  float32 / int32 tensors).
- InstanceNormalization keeps only what axis=None uses (no regularisers or constraints); K.std is tf_keras's.
  AffineTransformLayer has no get_config (nothing here serialises the models).
- Only the options of the paper's runs: warp_skip 'mask' (dsc and later variants) or 'none' (baseline),
  warp_agg 'max', disc_type 'call', use_input_pose 1, use_bg 0, pose_rep_type 'hm'; the other branches
  (stn, full, sim, warp, background, aggregations other than max) raise NotImplementedError, and the
  Inputs those options leave unused (bg_img, the discriminator's warp inputs) are not created. None of this
  changes a weight-bearing layer or the order in which they are created.
"""

import numpy as np
import tensorflow as tf
from tf_keras import backend as K
from tf_keras.layers import (Activation, Concatenate, Conv2D, Conv2DTranspose, Cropping2D, Dropout, Flatten, Input,
                             Layer, LeakyReLU, ZeroPadding2D)
from tf_keras.models import Model


class InstanceNormalization(Layer):
    """keras_contrib's InstanceNormalization with axis=None: statistics over all non-batch axes, scalar gamma/beta."""

    def __init__(self, axis=None, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        assert axis is None
        self.axis = axis
        self.epsilon = epsilon

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(1,), name="gamma", initializer="ones")
        self.beta = self.add_weight(shape=(1,), name="beta", initializer="zeros")
        self.built = True

    def call(self, inputs, training=None):
        reduction_axes = list(range(1, len(K.int_shape(inputs))))
        mean = K.mean(inputs, reduction_axes, keepdims=True)
        stddev = K.std(inputs, reduction_axes, keepdims=True) + self.epsilon
        normed = (inputs - mean) / stddev
        return normed * K.reshape(self.gamma, [1] * len(K.int_shape(inputs))) + \
            K.reshape(self.beta, [1] * len(K.int_shape(inputs)))


class AffineTransformLayer(Layer):
    """pose_transform.py's layer: warp the features once per transform, mask, aggregate (here 'max')."""

    def __init__(self, number_of_transforms, aggregation_fn, init_image_size, **kwargs):
        assert aggregation_fn in ["none", "max", "avg"]
        self.aggregation_fn = aggregation_fn
        self.number_of_transforms = number_of_transforms
        self.init_image_size = init_image_size
        super().__init__(**kwargs)

    def build(self, input_shape):
        self.image_size = list(input_shape[0][1:])
        self.affine_mul = [1, 1, self.init_image_size[0] // self.image_size[0],
                           1, 1, self.init_image_size[1] // self.image_size[1],
                           1, 1]
        self.affine_mul = np.array(self.affine_mul, dtype="float32").reshape((1, 1, 8))

    def call(self, inputs):
        expanded_tensor = tf.expand_dims(inputs[0], -1)
        multiples = [1, self.number_of_transforms, 1, 1, 1]
        tiled_tensor = tf.tile(expanded_tensor, multiples=multiples)
        repeated_tensor = tf.reshape(tiled_tensor,
                                     tf.shape(inputs[0]) * np.array([self.number_of_transforms, 1, 1, 1], "int32"))

        affine_transforms = inputs[1] / self.affine_mul

        affine_transforms = tf.reshape(affine_transforms, (-1, 8))
        tranformed = tf.raw_ops.ImageProjectiveTransformV3(
            images=repeated_tensor, transforms=affine_transforms, output_shape=tf.shape(repeated_tensor)[1:3],
            fill_value=0.0, interpolation="NEAREST", fill_mode="CONSTANT")
        res = tf.reshape(tranformed, [-1, self.number_of_transforms] + self.image_size)
        res = tf.transpose(res, [0, 2, 3, 1, 4])

        # Use masks
        if len(inputs) == 3:
            mask = tf.transpose(inputs[2], [0, 2, 3, 1])
            mask = tf.compat.v1.image.resize_images(mask, self.image_size[:2],
                                                    method=tf.compat.v1.image.ResizeMethod.NEAREST_NEIGHBOR)
            res = res * tf.expand_dims(mask, axis=-1)

        if self.aggregation_fn == "max":
            res = tf.reduce_max(res, axis=[-2])
        else:
            raise NotImplementedError(f"aggregation_fn={self.aggregation_fn!r}")
        return res

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def block(out, nkernels, down=True, bn=True, dropout=False, leaky=True):
    if leaky:
        out = LeakyReLU(0.2)(out)
    else:
        out = Activation("relu")(out)
    if down:
        out = ZeroPadding2D((1, 1))(out)
        out = Conv2D(nkernels, kernel_size=(4, 4), strides=(2, 2), use_bias=False)(out)
    else:
        out = Conv2DTranspose(nkernels, kernel_size=(4, 4), strides=(2, 2), use_bias=False)(out)
        out = Cropping2D((1, 1))(out)
    if bn:
        out = InstanceNormalization()(out)
    if dropout:
        out = Dropout(0.5)(out)
    return out


def encoder(inps, nfilters=(64, 128, 256, 512, 512, 512)):
    layers = []
    if len(inps) != 1:
        out = Concatenate(axis=-1)(inps)
    else:
        out = inps[0]
    for i, nf in enumerate(nfilters):
        if i == 0:
            out = Conv2D(nf, kernel_size=(3, 3), padding="same")(out)
        elif i == len(nfilters) - 1:
            out = block(out, nf, bn=False)
        else:
            out = block(out, nf)
        layers.append(out)
    return layers


def decoder(skips, nfilters=(512, 512, 512, 256, 128, 3)):
    out = None
    for i, (skip, nf) in enumerate(zip(skips, nfilters)):
        if 0 < i < 3:
            out = Concatenate(axis=-1)([out, skip])
            out = block(out, nf, down=False, leaky=False, dropout=True)
        elif i == 0:
            out = block(skip, nf, down=False, leaky=False, dropout=True)
        elif i == len(nfilters) - 1:
            out = Concatenate(axis=-1)([out, skip])
            out = Activation("relu")(out)
            out = Conv2D(nf, kernel_size=(3, 3), use_bias=True, padding="same")(out)
        else:
            out = Concatenate(axis=-1)([out, skip])
            out = block(out, nf, down=False, leaky=False)
    out = Activation("tanh")(out)
    return out


def concatenate_skips(skips_app, skips_pose, warp, image_size, warp_agg, warp_skip):
    if warp_skip != "mask":
        raise NotImplementedError(f"warp_skip={warp_skip!r}")
    skips = []
    for i, (sk_app, sk_pose) in enumerate(zip(skips_app, skips_pose)):
        if i < 4:
            out = AffineTransformLayer(10 if warp_skip == "mask" else 1, warp_agg, image_size)([sk_app] + warp)
            out = Concatenate(axis=-1)([out, sk_pose])
        else:
            out = Concatenate(axis=-1)([sk_app, sk_pose])
        skips.append(out)
    return skips


def _check_options(use_input_pose, warp_skip, disc_type, warp_agg, use_bg, pose_rep_type):
    if (not use_input_pose or warp_skip not in ("mask", "none") or disc_type != "call" or warp_agg != "max"
            or use_bg or pose_rep_type != "hm"):
        raise NotImplementedError("only the paper's options are re-typed (see the module docstring)")


def make_generator(image_size, use_input_pose, warp_skip, disc_type, warp_agg, use_bg, pose_rep_type):
    """Inputs [input_img, input_pose, output_img, output_pose] (+ [affines (10, 8), masks (10, H, W)] for
    'mask'); outputs [input_img, input_pose, generated, output_pose], as conditional_gan.py:102-143."""
    _check_options(use_input_pose, warp_skip, disc_type, warp_agg, use_bg, pose_rep_type)
    use_warp_skip = warp_skip != "none"
    input_img = Input(list(image_size) + [3])
    output_pose = Input(list(image_size) + [18])
    output_img = Input(list(image_size) + [3])

    nfilters_decoder = (512, 512, 512, 256, 128, 3) if max(image_size) == 128 else (512, 512, 512, 512, 256, 128, 3)
    nfilters_encoder = (64, 128, 256, 512, 512, 512) if max(image_size) == 128 else (64, 128, 256, 512, 512, 512, 512)

    warp = [Input((10, 8)), Input((10, image_size[0], image_size[1]))] if warp_skip == "mask" else []
    input_pose = [Input(list(image_size) + [18])]
    bg_img = []

    if use_warp_skip:
        enc_app_layers = encoder([input_img] + input_pose, nfilters_encoder)
        enc_tg_layers = encoder([output_pose] + bg_img, nfilters_encoder)
        enc_layers = concatenate_skips(enc_app_layers, enc_tg_layers, warp, image_size, warp_agg, warp_skip)
    else:
        enc_layers = encoder([input_img] + input_pose + [output_pose], nfilters_encoder)

    out = decoder(enc_layers[::-1], nfilters_decoder)

    return Model(inputs=[input_img] + input_pose + [output_img, output_pose] + bg_img + warp,
                 outputs=[input_img] + input_pose + [out, output_pose] + bg_img)


def make_discriminator(image_size, use_input_pose, warp_skip, disc_type, warp_agg, use_bg, pose_rep_type):
    """Inputs [input_img, input_pose, output_img, output_pose] -> flattened patch probabilities."""
    _check_options(use_input_pose, warp_skip, disc_type, warp_agg, use_bg, pose_rep_type)
    input_img = Input(list(image_size) + [3])
    output_pose = Input(list(image_size) + [18])
    input_pose = [Input(list(image_size) + [18])]
    output_img = Input(list(image_size) + [3])

    out = Concatenate(axis=-1)([input_img] + input_pose + [output_img, output_pose])
    out = Conv2D(64, kernel_size=(4, 4), strides=(2, 2))(out)
    out = block(out, 128)
    out = block(out, 256)
    out = block(out, 512)
    out = block(out, 1, bn=False)
    out = Activation("sigmoid")(out)
    out = Flatten()(out)
    return Model(inputs=[input_img] + input_pose + [output_img, output_pose], outputs=[out])
