"""The ``seqae`` command: one root group holding the encoder, classifier and pipeline groups."""
from __future__ import annotations

import click

from classifier.cli import classifier_group
from encoder.cli import encoder_group
from encoder.clitools import SeqaeGroup


@click.group(cls=SeqaeGroup)
@click.option("--verbose", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(package_name="seqae")
@click.pass_context
def main(ctx, verbose):
    """seqae: LSTM autoencoder codes for event sequences, XGBoost on top, compared honestly."""
    ctx.obj = {"verbose": verbose}


main.add_command(encoder_group)
main.add_command(classifier_group)
