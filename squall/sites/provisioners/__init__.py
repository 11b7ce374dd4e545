"""Provisioners: what is created around a job and destroyed after it — a job stack (``job_stack``, and
``boot_wait`` for its machines), a claimed VM of an idle bank (``bank``), a Kubernetes job stack
(``kubernetes_stack``). Each implements ``contract.Provisioner``; the default creates nothing."""
