"""posemu's terminal firmware: the system under test."""
