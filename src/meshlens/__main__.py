"""``python -m meshlens``."""

from meshlens import interrupts

interrupts.install(early=True)  # before the CLI's imports: Ctrl-C during them is handled too

from meshlens.cli import main  # noqa: E402

main()
