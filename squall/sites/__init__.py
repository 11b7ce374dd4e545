"""Sites: where jobs run, each composed by axis from parts.

``contract`` says what a site is; ``registry`` holds the kinds and ``registration`` which sites exist and
opens one by name; ``kinds/`` holds one file per kind, each registering itself; a kind assembles a site
(``assembled``) from a transport (``transports/``: how its hosts are reached), an executor (``executors/``:
how tasks start and are watched) and a provisioner (``provisioners/``: what is made around a job);
``workarea`` is the layout of a job's folders that all of them share.
"""
