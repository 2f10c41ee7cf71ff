"""Keras functional models: the generator, the PatchGAN discriminator and the frozen VGG19 feature extractor."""
