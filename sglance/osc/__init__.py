"""The python-openstackclient plugin: ``openstack image upload``, ``image upload show|resume|abort``,
``image download`` and ``image migrate``, with the CLI's own authentication (clouds.yaml, ``OS_*``, ``--os-*``)."""
