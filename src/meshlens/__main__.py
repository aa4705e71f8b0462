"""``python -m meshlens``."""

from meshlens.launcher import fast

if not fast():
    from meshlens import interrupts

    interrupts.install(early=True)  # before the CLI's imports: Ctrl-C during them is handled too
    from meshlens.cli import run

    run()
