"""Multi-agent runs: a request's agents and pattern become a `Plan` (validated, every agent loaded
and narrowed before anything runs), and an `AgentRun` executes it as a stream of events."""
