"""Tools that play SIP's far ends for the tests and the benchmarks alike: SIPp runs with
header checks (sipp), raw SIP over sockets (rawsip), network namespaces (netns)."""
