"""`make test-distributed`: run_distributed.py and the pieces it puts on its two hosts."""
