"""The cloud listings gc reads to find leftovers no stack owns: AWS (``aws``), OpenStack (``openstack``) and
Kubernetes (``kubernetes``), each a ``tagged.TaggedInventory``."""
