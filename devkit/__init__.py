"""Tooling the tests, the benchmarks and the scripts share, none of it a test itself.

- servers:       real redis-server and rabbitmq-server processes, Debian's or in the stand-in images
- docs_protocol: the Kubernetes docs' rediswq.py protocol, re-implemented, as the baseline to beat
- docker:        whether a Docker engine answers, and bind mounts for `docker run`
- indexed:       indexed-job's items in the form its init container (jobworker-write-item) reads
- revisions:     the jobworker package as of a git revision, for a benchmark's --compare

The local Kubernetes cluster has its own package, cluster/localcluster.
"""
