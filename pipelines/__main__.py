"""``python -m pipelines ...`` is ``seqae ...`` (for launchers such as ``torchrun -m pipelines``)."""
from pipelines.cli import main

main(prog_name="seqae")
