"""TensorBoard event files of a training run: scalars (the loss means, images/s) and the sample grids."""


class SummaryWriter:
    """TensorBoard event files through tf.summary (TensorFlow is installed with either backend).

    logdir None: a writer that writes nothing (the workers of a multi-worker job but the chief)."""

    def __init__(self, logdir):
        import tensorflow as tf

        self._tf = tf
        self._writer = None if logdir is None else tf.summary.create_file_writer(str(logdir))

    def scalars(self, values, step):
        if self._writer is None:
            return
        with self._writer.as_default():
            for name, value in values.items():
                self._tf.summary.scalar(name, value, step=step)

    def image(self, name, images, step):
        if self._writer is None:
            return
        with self._writer.as_default():
            self._tf.summary.image(name, images, step=step)

    def close(self):
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()

