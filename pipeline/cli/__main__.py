"""`python -m pipeline.cli ...` = `anomaly-pipeline ...`."""
import sys

from pipeline.cli import main

sys.exit(main())
