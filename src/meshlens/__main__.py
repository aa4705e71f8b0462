"""``python -m meshlens``."""

from meshlens.launcher import main

main()
