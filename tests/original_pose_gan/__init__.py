"""The original pose-gan's networks and inputs re-typed for the tests (tf_keras, numpy): the reference for parity."""
