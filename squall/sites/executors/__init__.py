"""Executors: how a job's tasks are started, watched and stopped on the hosts a transport reaches — runtime
slots without a scheduler (``slots``, with ``mpi_hosts`` for tasks across hosts), Slurm (``slurm``,
``slurm_limits``), a Kubernetes Indexed Job (``kubernetes_job``) — and what they share: ``silence`` (a host
or scheduler not answering). Each implements ``contract.Executor``."""
