"""Evaluation: the paper's metrics (SSIM, mask-SSIM, IS, FID, DS), Inception and the test protocol with its report."""
