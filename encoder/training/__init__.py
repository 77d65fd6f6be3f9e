"""Training the autoencoder: the loop of small named steps (``loop``), its masked losses, the
denoising corruption (``noise``), the contrastive crops (``views``) and data-parallel training
under torchrun (``distributed``)."""
