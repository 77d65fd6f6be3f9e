"""What every seqae package shares: atomic writes, artefact manifests, the error hierarchy, CLI
helpers and reading latent files. Imports nothing from the rest of ``encoder``."""
