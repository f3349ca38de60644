"""Tests of the runners: simulated, command and the profiles that pick them."""
