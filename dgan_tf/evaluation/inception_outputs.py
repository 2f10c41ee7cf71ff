"""What both Inception networks (Keras's InceptionV3 and the 2015 graph) share: the methods derived from
`predictions_and_features`."""


class InceptionOutputs:
    """What both Inception networks offer: `predictions_and_features`, and each of the two alone."""

    def predictions(self, images):
        """Softmax predictions (N, classes) for the Inception Score."""
        return self.predictions_and_features(images)[0]

    def pool_features(self, images):
        """2048-d pool features (N, 2048) for FID."""
        return self.predictions_and_features(images)[1]
