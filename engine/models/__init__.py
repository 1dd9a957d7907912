"""Networks (generators, PatchGAN critics), the GAN objectives and losses, and the history pool of fakes."""
