-- benchmarks/sip_bench.py: every SIM of the generated data set.
SELECT username FROM sim ORDER BY username
