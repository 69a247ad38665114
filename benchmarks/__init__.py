"""The benchmark of DESIGN §7: ``benchmarks/run.sh`` (see its README section)."""
