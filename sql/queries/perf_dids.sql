-- benchmarks/sip_bench.py: every DID of the generated data set.
SELECT number FROM did ORDER BY number
