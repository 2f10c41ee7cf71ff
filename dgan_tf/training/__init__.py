"""Training: the GAN and its train steps (TensorFlow and JAX), the trainer loop, checkpoints."""
