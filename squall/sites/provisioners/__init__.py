"""Provisioners: what is created around a job and destroyed after it — the job's own machines
(``job_machines``: made by a job stack, ``job_stack``, or claimed from an idle bank, ``bank``; waited for by
``boot_wait``; handed to the site as the job's hosts), a Kubernetes job stack (``kubernetes_stack``). Each implements ``contract.Provisioner``; the default creates nothing."""
