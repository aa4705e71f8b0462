"""``python -m meshlens``."""

from meshlens.cli import main

main()
