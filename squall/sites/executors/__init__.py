"""Executors: how a job's tasks are started, watched and stopped on the hosts a transport reaches — runtime
slots without a scheduler (``slots``, with ``mpi_hosts`` for tasks across hosts), a batch scheduler's
arrays (``batch``, shared by ``slurm`` with ``slurm_limits`` and ``gridengine``; each beside its runtime module
``squall/runtime/schedulers/<name>.py``), a Kubernetes Indexed Job (``kubernetes_job``) — and what they share: ``silence`` (a host
or scheduler not answering). Each implements ``contract.Executor``."""
