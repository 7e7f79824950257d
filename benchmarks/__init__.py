"""Throughput benchmarks (`make bench`); not run by CI. Each bench_*.py has a main()."""
